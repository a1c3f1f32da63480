"""Cross-validated comparison of the mapping networks with their simple peers.

Every peer (`PeerSpec`: a registered network, or the per-pixel gradient-boosting classifier of
`cloudlulc_edge.training.peers`) is trained by the same harness on the patches outside one fold
(`cloudlulc_edge.data.folds`: spatial groups kept together), for several seeds, and scored on the
held-out fold at the same simulated clouds (`EVAL_COVERS`, identical for every model and seed),
against the raw teacher labels and against the physics-corrected ones (`LABEL_SETS`). A `Job` is
one peer × seed × fold; `summarise` pools the held-out predictions of all folds (each patch
scored once per seed) and gives a 95 % bootstrap interval over patches. The runner with workers,
resume and the tables is ``python -m cloudlulc_edge.bench.crossval``.

Nothing is tuned on a held-out fold: every training option is fixed in the configuration before
the comparison runs, networks are scored at their last epoch (``final/``), never at a best epoch.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from cloudlulc_edge.contract import NUM_CLASSES
from cloudlulc_edge.data.augment import Augment
from cloudlulc_edge.data.cloud_sim import CloudDonor, CloudSimulator, simulate_sample
from cloudlulc_edge.data.cloudlulc_set import Sample
from cloudlulc_edge.models.checkpoint import load_checkpoint
from cloudlulc_edge.training.config import TrainConfig, load_config
from cloudlulc_edge.training.datasets import SimulatedCloudSet, build_datasets, fold_test_set
from cloudlulc_edge.training.loop import predict_classes, train
from cloudlulc_edge.training.metrics import ConfusionMatrix, segmentation_metrics
from cloudlulc_edge.training.objectives import class_weights
from cloudlulc_edge.training.peers import PixelGBM

__all__ = [
    "COVER_BINS",
    "EVAL_COVERS",
    "LABEL_SETS",
    "Job",
    "PeerSpec",
    "finished_result",
    "job_config",
    "job_settings",
    "run_job",
    "summarise",
]


# ---------------------------------------------------------------------------------------------------
# Jobs: one model × seed × fold, trained and evaluated on the held-out fold.
# ---------------------------------------------------------------------------------------------------

#: Covers of the evaluation clouds: the centres of the bins 0, 10–30, 30–50, 50–70, 70–90 %.
EVAL_COVERS = (0.0, 0.2, 0.4, 0.6, 0.8)
#: Bin names of `EVAL_COVERS`.
COVER_BINS = ("0 %", "10–30 %", "30–50 %", "50–70 %", "70–90 %")
#: Labels every prediction is scored against.
LABEL_SETS = ("raw", "water")


@dataclass(frozen=True)
class PeerSpec:
    """One model of the comparison.

    Attributes:
        name: Name in the tables.
        kind: ``network`` (a registered variant trained by `loop.train`) or ``gbm`` (`peers.PixelGBM`).
        variant: Registered variant (networks).
        overrides: ``key=value`` overrides of the training configuration (networks).
        evaluations: Input configuration → row name; a network can be scored several ways (e.g.
            with S1 removed); a GBM has its own inputs (``s2+s1`` or ``s2``).
    """

    name: str
    kind: str
    variant: str = ""
    overrides: tuple[str, ...] = ()
    evaluations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Job:
    """One training run of the comparison: a peer, a seed and a held-out fold."""

    peer: PeerSpec
    seed: int
    fold: int

    @property
    def key(self) -> str:
        """File stem of the job's result."""
        return f"{self.peer.name}_s{self.seed}_f{self.fold}"


def job_config(job: Job, base: str | Path, folds: int, runs_dir: str | Path, common: Sequence[str] = ()) -> TrainConfig:
    """The training configuration of a network job: ``base`` + the comparison's and the peer's overrides."""
    overrides = [*common, *job.peer.overrides, f"variant={job.peer.variant}", "train_split=all",
                 f"cv_folds={folds}", f"cv_fold={job.fold}", f"seed={job.seed}",
                 f"output_dir={Path(runs_dir) / job.key}"]  # fmt: skip
    return load_config(base, overrides)


#: Configuration fields that say where things are, not how a job was trained or scored.
_LOCATIONS = ("data_root", "cloud_donor", "output_dir")


def job_settings(job: Job, base: str | Path, folds: int, common: Sequence[str] = ()) -> dict[str, Any]:
    """What a job's result depends on: its training configuration (locations left out), how it is scored.

    Two runs of a job with equal settings give the same result up to the code that ran them (code
    changes are not detected: re-run the comparison after changing the recipe's code).
    """
    cfg = job_config(job, base, folds, "runs", common).to_dict()
    settings = {"kind": job.peer.kind, "config": {k: v for k, v in cfg.items() if k not in _LOCATIONS},
                "evaluations": [list(e) for e in job.peer.evaluations], "covers": list(EVAL_COVERS),
                "label_sets": list(LABEL_SETS)}  # fmt: skip
    normal: dict[str, Any] = json.loads(json.dumps(settings))  # tuples as lists, as a job file holds them
    return normal


def finished_result(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The job result at ``path`` if it was made with ``settings`` (`job_settings`), else None.

    A missing, unreadable or differently-made result (older files record no settings) is None:
    the job is run again.
    """
    try:
        result: dict[str, Any] = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return result if isinstance(result, dict) and result.get("settings") == settings else None


def run_job(job: Job, base: str | Path, folds: int, runs_dir: str | Path, common: Sequence[str] = ()) -> dict[str, Any]:
    """Trains one job and scores it on its held-out fold against every label set.

    Returns:
        ``{"peer", "seed", "fold", "settings", "seconds", "records"}`` (``settings``: `job_settings`); each record holds ``row`` (the table row),
        ``patch``, ``cover``, ``labels`` and the 6 × 6 ``confusion`` (rows = reference).
    """
    start = time.perf_counter()
    settings = job_settings(job, base, folds, common)
    cfg = job_config(job, base, folds, runs_dir, common)
    records: list[dict[str, Any]] = []
    simulator = CloudSimulator(CloudDonor.from_safe(cfg.cloud_donor))
    tests = {rule: fold_test_set(cfg, EVAL_COVERS, rule, simulator) for rule in LABEL_SETS}
    if job.peer.kind == "network":
        result = train(cfg)
        assert result.final_checkpoint is not None
        model, _ = load_checkpoint(result.final_checkpoint)
        for inputs, row in job.peer.evaluations:
            predictions = [p for _, batch in predict_classes(model, tests["raw"], 8, torch.device("cpu"), inputs)
                           for p in batch]  # fmt: skip
            records += _score(row, predictions, tests)
    elif job.peer.kind == "gbm":
        data = build_datasets(cfg)
        train_set = [data.train[i] for i in range(len(data.train))]
        weights = class_weights(_counts(train_set), cfg.class_weighting)
        augment = Augment(cfg.flip, cfg.rot90, cfg.crop)
        low, high = cfg.cloud_cover

        def prepare(sample: Sample, rng: np.random.Generator) -> Sample:
            return simulate_sample(augment(sample, rng), simulator, float(rng.uniform(low, high)), rng)

        for inputs, row in job.peer.evaluations:
            gbm = PixelGBM(inputs=inputs, seed=job.seed).fit(  # type: ignore[arg-type]
                train_set, prepare, None if weights is None else weights.double().numpy()
            )
            records += _score(row, [gbm.predict(tests["raw"][i]) for i in range(len(tests["raw"]))], tests)
    else:
        raise ValueError(f"unknown peer kind {job.peer.kind!r}")
    return {"peer": job.peer.name, "seed": job.seed, "fold": job.fold, "settings": settings,
            "seconds": round(time.perf_counter() - start, 1), "records": records}  # fmt: skip


def _counts(samples: Sequence[Sample]) -> Tensor:
    counts = torch.zeros(NUM_CLASSES, dtype=torch.int64)
    for sample in samples:
        label = torch.from_numpy(sample.label)
        counts += torch.bincount(label[label < NUM_CLASSES], minlength=NUM_CLASSES)
    return counts


def _score(row: str, predictions: Sequence[npt.NDArray[np.int64]],
           tests: dict[str, SimulatedCloudSet]) -> list[dict[str, Any]]:  # fmt: skip
    records = []
    for rule, data in tests.items():
        for index, prediction in enumerate(predictions):
            sample = data[index]
            cm = ConfusionMatrix(NUM_CLASSES)
            cm.update(prediction, sample.label)
            k = index % len(data.covers)
            records.append({"row": row, "patch": sample.name, "cover": data.covers[k], "labels": rule,
                            "confusion": cm.matrix.tolist()})  # fmt: skip
    return records


# ---------------------------------------------------------------------------------------------------
# Summary: pooled and per-patch metrics with 95 % intervals.
# ---------------------------------------------------------------------------------------------------


def _pooled(matrices: npt.NDArray[np.int64]) -> tuple[float, float, npt.NDArray[np.float64]]:
    """OA, mIoU and per-class IoU (NaN where undefined) of a summed (K, K) confusion matrix."""
    m = segmentation_metrics(matrices)
    iou = np.array([np.nan if v is None else v for v in m["iou"]], dtype=np.float64)
    return float(m["oa"] or 0.0), float(m["miou"] or 0.0), iou


def summarise(results: Sequence[dict[str, Any]], boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Per row, label set and cover: mean over seeds of the pooled OA/mIoU with a 95 % interval.

    The interval is a percentile bootstrap over patches (the unit that was sampled): each
    replicate draws the evaluated patches with replacement, pools their confusion matrices per
    seed and averages over seeds, so it covers both the patch-to-patch and the seed-to-seed
    variation. Per-patch means (the mean over patches of each patch's OA/mIoU) and per-class IoU
    are reported beside the pooled figures.

    Returns:
        ``{"rows": {row: {labels: {cover: {...}}}}, "patches": n, "seeds": [...], "covers": [...]}``.
    """
    rng = np.random.default_rng(seed)
    cells: dict[tuple[str, str, float], dict[tuple[int, str], npt.NDArray[np.int64]]] = {}
    seeds: set[int] = set()
    for result in results:
        seeds.add(int(result["seed"]))
        for r in result["records"]:
            key = (r["row"], r["labels"], float(r["cover"]))
            cells.setdefault(key, {})[(int(result["seed"]), r["patch"])] = np.asarray(r["confusion"], dtype=np.int64)
    rows: dict[str, Any] = {}
    for (row, labels, cover), by in sorted(cells.items()):
        seed_list = sorted({s for s, _ in by})
        patches = sorted({p for _, p in by})
        cube = np.stack([np.stack([by.get((s, p), np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)) for p in patches])
                         for s in seed_list])  # (seeds, patches, K, K)  # fmt: skip
        per_seed = [_pooled(cube[i].sum(0)) for i in range(len(seed_list))]
        oa = float(np.mean([p[0] for p in per_seed]))
        miou = float(np.mean([p[1] for p in per_seed]))
        with warnings.catch_warnings():  # a class absent from every seed's cell stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            iou = np.nanmean(np.stack([p[2] for p in per_seed]), axis=0)
        draws = rng.integers(0, len(patches), size=(boot, len(patches)))
        boot_oa, boot_miou = np.empty(boot), np.empty(boot)
        for b in range(boot):
            stats = [_pooled(cube[i, draws[b]].sum(0)) for i in range(len(seed_list))]
            boot_oa[b] = np.mean([s[0] for s in stats])
            boot_miou[b] = np.mean([s[1] for s in stats])
        per_patch = [_pooled(cube[:, j].sum(0)) for j in range(len(patches))]
        rows.setdefault(row, {}).setdefault(labels, {})[f"{cover:g}"] = {
            "oa": oa, "oa_ci": [float(np.percentile(boot_oa, 2.5)), float(np.percentile(boot_oa, 97.5))],
            "miou": miou, "miou_ci": [float(np.percentile(boot_miou, 2.5)), float(np.percentile(boot_miou, 97.5))],
            "oa_per_patch": float(np.mean([p[0] for p in per_patch])),
            "miou_per_patch": float(np.mean([p[1] for p in per_patch])),
            "iou": [None if np.isnan(v) else float(v) for v in iou],
            "patches": len(patches), "seeds": len(seed_list),
        }  # fmt: skip
    return {"rows": rows, "seeds": sorted(seeds), "covers": list(EVAL_COVERS), "bins": list(COVER_BINS)}
