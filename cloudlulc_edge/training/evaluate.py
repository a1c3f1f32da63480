"""Evaluation on a CloudLULC-Set split: overall, per-class and per-cloud-bin metrics, as JSON, markdown and PNG.

One confusion matrix over all pixels of the split (ignore excluded) plus one per cloud bin of the
paper (<10, 10–30, 30–50, 50–70, >70 %, from each sample's cloud fraction). Figures: per-class
IoU/F1 bars, the row-normalised confusion matrix, and OA/mIoU/macro-F1 per cloud bin (the paper
reports these as figures).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cloudlulc_edge.contract import CLASSES
from cloudlulc_edge.data.cloudlulc_set import CLOUD_BINS, cloud_bin
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.models.base import LULCModel
from cloudlulc_edge.training.datasets import SampleSource
from cloudlulc_edge.training.loop import predict_classes
from cloudlulc_edge.training.metrics import StratifiedMetrics

__all__ = ["EvaluationRequest", "evaluate", "evaluate_checkpoint", "render_markdown", "write_report"]

log = logging.getLogger(__name__)
#: Reference figures of the paper (CloudLULC-Net on the CloudLULC-Set test split).
PAPER = {"oa": 0.8660, "macro_f1": 0.8329, "miou": 0.7351}


def evaluate(
    model: LULCModel, data: SampleSource, batch_size: int = 4, device: str = "cpu", inputs: str = "cloudy_s2+s1"
) -> dict[str, Any]:
    """Runs ``model`` over ``data``; returns ``{"overall", "strata", "samples", "split", "inputs"}``.

    Args:
        model: The network (evaluated in eval mode).
        data: A split.
        batch_size: Samples per forward pass.
        device: Where to run.
        inputs: Input configuration (`loop.INPUT_CONFIGS`).
    """
    model = model.to(device)
    metrics = StratifiedMetrics(tuple(name for name, _ in CLOUD_BINS), model.config.num_classes)
    counts = dict.fromkeys(metrics.strata, 0)
    for samples, prediction in predict_classes(model, data, batch_size, torch.device(device), inputs):
        for sample, pred in zip(samples, prediction, strict=True):
            stratum = cloud_bin(sample.cloud_fraction)
            metrics.update(stratum, pred, sample.label)
            counts[stratum] += 1
    report = dict(metrics.report())
    for name, n in counts.items():
        report["strata"][name]["samples"] = n
    return {**report, "split": data.split, "inputs": inputs, "samples": len(data), "classes": [c.name for c in CLASSES]}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def render_markdown(report: dict[str, Any], title: str) -> str:
    """Overall, per-class and per-bin tables (percent), with the paper's figures for reference."""
    o = report["overall"]
    lines = [
        f"## {title}",
        "",
        f"{report['samples']} samples of the {report['split']} split, {o['pixels']:,} pixels.",
        "",
    ]
    paper = f"| paper (CloudLULC-Net, test split) | {_pct(PAPER['oa'])} | {_pct(PAPER['macro_f1'])} | {_pct(PAPER['miou'])} |"
    lines += ["| | OA | macro-F1 | mIoU |", "|---|---|---|---|",
              f"| this model | {_pct(o['oa'])} | {_pct(o['macro_f1'])} | {_pct(o['miou'])} |", paper, ""]  # fmt: skip
    lines += ["| class | IoU | F1 | precision | recall |", "|---|---|---|---|---|"]
    for i, name in enumerate(report["classes"]):
        lines.append(f"| {name} | {_pct(o['iou'][i])} | {_pct(o['f1'][i])} | {_pct(o['precision'][i])} | "
                     f"{_pct(o['recall'][i])} |")  # fmt: skip
    lines += ["", "| cloud bin | samples | OA | macro-F1 | mIoU |", "|---|---|---|---|---|"]
    for name, m in report["strata"].items():
        lines.append(f"| {name} | {m['samples']} | {_pct(m['oa'])} | {_pct(m['macro_f1'])} | {_pct(m['miou'])} |")
    return "\n".join(lines) + "\n"


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _figures(report: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    o, classes = report["overall"], report["classes"]
    paths = []
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(classes))
    ax.bar(x - 0.2, [v or 0 for v in o["iou"]], 0.4, label="IoU")
    ax.bar(x + 0.2, [v or 0 for v in o["f1"]], 0.4, label="F1")
    ax.set_xticks(x, classes, rotation=20)
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("per-class IoU and F1")
    paths.append(_save(fig, out / "per_class.png"))
    cm = np.array(o["confusion"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(x, classes, rotation=45, ha="right")
    ax.set_yticks(x, classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    fig.colorbar(im, ax=ax)
    ax.set_title("confusion matrix (row-normalised)")
    paths.append(_save(fig, out / "confusion.png"))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(report["strata"])
    for key in ("oa", "macro_f1", "miou"):
        values = [report["strata"][n][key] for n in names]
        ax.plot(names, [np.nan if v is None else v for v in values], marker="o", label=key)
    ax.set_ylim(0, 1)
    ax.set_xlabel("cloud cover")
    ax.legend()
    ax.set_title("metrics per cloud bin")
    paths.append(_save(fig, out / "cloud_bins.png"))
    return paths


def write_report(report: dict[str, Any], out_dir: str | Path, title: str = "Evaluation") -> dict[str, Path]:
    """Writes ``metrics.json``, ``metrics.md`` and the PNG figures into ``out_dir`` (figures need matplotlib).

    Returns:
        ``{"json", "markdown", "figures"…}`` paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {
        "json": atomic_write(out / "metrics.json", lambda tmp: tmp.write_text(json.dumps(report, indent=1) + "\n")),
        "markdown": atomic_write(out / "metrics.md", lambda tmp: tmp.write_text(render_markdown(report, title))),
    }
    try:
        for path in _figures(report, out):
            paths[path.stem] = path
    except ImportError as exc:  # matplotlib is the `bench` extra
        log.warning("figures not written (%s); install the 'bench' extra", exc)
    return paths


@dataclass(frozen=True)
class EvaluationRequest:
    """What ``cloudlulc-edge evaluate`` asks for.

    Attributes:
        checkpoint: Checkpoint directory (model card + weights).
        data_root: CloudLULC-Set root, or the BigEarthNet + dw-labels folder.
        out: Folder for ``metrics.json``, ``metrics.md`` and the figures.
        split: ``train``, ``val`` or ``test``.
        dataset: ``cloudlulc_set`` or ``bigearthnet_dw``.
        cloud_donor: Cloudy L2A SAFE (``bigearthnet_dw``).
        covers: Simulated cloud covers (``bigearthnet_dw``).
        label_scheme: CloudLULC-Set label ids.
        s2_offset: DN offset of the optical files.
        s1_units: ``db`` or ``linear``.
        label_rule: ``raw`` or ``water`` labels (``bigearthnet_dw``).
        batch_size: Samples per forward pass.
        device: Where to run.
        inputs: Input configuration (`loop.INPUT_CONFIGS`).
    """

    checkpoint: Path
    data_root: Path
    out: Path = Path("eval")
    split: str = "test"
    dataset: str = "cloudlulc_set"
    cloud_donor: Path | None = None
    covers: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8)
    label_scheme: str = "one_based"
    s2_offset: float = 0.0
    s1_units: str = "db"
    label_rule: str = "raw"
    batch_size: int = 4
    device: str = "cpu"
    inputs: str = "cloudy_s2+s1"


def evaluate_checkpoint(request: EvaluationRequest) -> tuple[dict[str, Any], dict[str, Path], str]:
    """Loads a checkpoint, evaluates it on a split and writes the report.

    Returns:
        ``(report, written paths, title)``.

    Raises:
        ConfigError: Invalid options.
        ModelCardError: A bad checkpoint.
        DatasetError: Malformed data (naming the file).
    """
    from cloudlulc_edge.models.checkpoint import load_checkpoint
    from cloudlulc_edge.training.config import TrainConfig
    from cloudlulc_edge.training.datasets import evaluation_set

    cfg = TrainConfig(data_root=str(request.data_root), dataset=request.dataset,
                      cloud_donor=str(request.cloud_donor or ""), val_covers=tuple(request.covers),
                      label_scheme=request.label_scheme, s2_offset=request.s2_offset, s1_units=request.s1_units,
                      inputs=request.inputs, label_rule=request.label_rule)  # fmt: skip
    cfg.validate()
    model, card = load_checkpoint(request.checkpoint)
    report = evaluate(model, evaluation_set(cfg, request.split), request.batch_size, request.device, request.inputs)
    title = f"{card.variant} on {request.data_root.name} ({request.split})"
    return report, write_report(report, request.out, title), title
