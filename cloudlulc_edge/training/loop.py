"""The training loop: AdamW, warm-up + poly/cosine, AMP, clipping, exact resume, best-on-val mIoU.

Every registered variant trains here, CloudLULC-Net and the baselines alike; what differs is the
objective (`cloudlulc_edge.training.objectives`). Determinism is by construction, so a resumed run
continues bit for bit: the data order of epoch ``e`` is a permutation drawn from ``seed`` and ``e``
alone, each sample's augmentation from ``(seed, e, index)``, and the training state saved after
every epoch holds the model, the objective (e.g. the anchors), the optimizer, the schedule, the
torch RNG state and the step. ``OUTPUT/last/state.pt`` is
written atomically (and loaded with ``weights_only=True``: no arbitrary unpickling); the
best-on-val checkpoint goes to ``OUTPUT/best/`` and the last epoch's to ``OUTPUT/final/`` (the
checkpoint of runs without validation: cross-validation folds and the packaged default, which
select nothing on held-out data), both as safetensors + model card; ``OUTPUT/log.jsonl`` gets one
JSON line per epoch.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from cloudlulc_edge.data.cloudlulc_set import Sample
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.models import create_model
from cloudlulc_edge.models.base import LULCModel
from cloudlulc_edge.models.checkpoint import save_checkpoint
from cloudlulc_edge.training.config import ConfigError, TrainConfig
from cloudlulc_edge.training.datasets import SampleSource, build_datasets, data_description
from cloudlulc_edge.training.metrics import ConfusionMatrix
from cloudlulc_edge.training.objectives import Objective, build_objective, class_weights

__all__ = ["INPUT_CONFIGS", "RECORD_FIELDS", "TrainResult", "autocast_for", "collate", "loss_terms", "lr_factor",
           "optimisation_step", "predict_classes", "predict_logits", "train", "train_from_config"]  # fmt: skip

#: Input configurations of the paper's Fig. 12.
INPUT_CONFIGS = ("cloudy_s2+s1", "cloudy_s2", "s1", "clear_s2+s1")

STATE_FILE = "state.pt"
#: Keys of an epoch record that are not parts of the loss (``loss`` is their total).
RECORD_FIELDS = ("epoch", "step", "lr", "val_miou", "best_miou", "seconds", "loss")


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        epochs_run: Epochs trained by this call (0 when the run was already complete).
        last_epoch: Index of the last finished epoch (1-based).
        best_miou: Best validation mIoU so far (None without a validation split).
        best_checkpoint: ``OUTPUT/best`` when one was written.
        model: The trained model (eval mode).
        final_checkpoint: ``OUTPUT/final`` (the last epoch) once the run is complete.
        epochs: Epochs the configuration asks for.
    """

    epochs_run: int
    last_epoch: int
    best_miou: float | None
    best_checkpoint: Path | None
    model: LULCModel
    final_checkpoint: Path | None = None
    epochs: int = 0


def lr_factor(step: int, total: int, warmup: int, schedule: str, power: float) -> float:
    """Multiplier of the base learning rate at ``step`` (linear warm-up, then poly or cosine to 0)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return float((1.0 - progress) ** power)


def collate(samples: list[Sample], device: torch.device, inputs: str = "cloudy_s2+s1") -> dict[str, Tensor]:
    """Stacks samples into model inputs and labels on ``device``, for one input configuration.

    Args:
        samples: Loaded samples.
        device: Target device.
        inputs: `INPUT_CONFIGS` entry (the paper's Fig. 12): ``cloudy_s2+s1`` (the task),
            ``cloudy_s2`` (no SAR: zero SAR with zero SAR validity, the model's missing-S1 path),
            ``s1`` (no optics: zero S2 with zero validity, so ORM switches the optics off), or
            ``clear_s2+s1`` (the cloud-free image: the ideal reference condition). The clear
            image is always in the batch as ``s2_clear`` too (the reconstruction target).

    Raises:
        ConfigError: Unknown input configuration.
    """
    if inputs not in INPUT_CONFIGS:
        raise ConfigError(f"inputs must be one of {', '.join(INPUT_CONFIGS)}, got {inputs!r}")

    def stack(name: str) -> Tensor:
        return torch.from_numpy(np.stack([getattr(s, name) for s in samples])).to(device)

    batch = {
        "s2": stack("s2_clear" if inputs == "clear_s2+s1" else "s2"),
        "s2_clear": stack("s2_clear"),
        "s1": stack("s1"),
        "s2_valid": stack("s2_valid")[:, None].float(),
        "s1_valid": stack("s1_valid")[:, None].float(),
        "label": stack("label"),
    }
    soft = [s.soft for s in samples if s.soft is not None]
    if len(soft) == len(samples):
        batch["soft"] = torch.from_numpy(np.stack(soft)).to(device)
    if inputs == "cloudy_s2":
        batch["s1"], batch["s1_valid"] = torch.zeros_like(batch["s1"]), torch.zeros_like(batch["s1_valid"])
    elif inputs == "s1":
        batch["s2"], batch["s2_valid"] = torch.zeros_like(batch["s2"]), torch.zeros_like(batch["s2_valid"])
    return batch


def predict_logits(model: LULCModel, batch: dict[str, Tensor]) -> Tensor:
    """Logits (B, K, H, W) for a collated batch of any size.

    Inputs are reflect-padded to the model's multiple (e.g. 120 → 128 for BigEarthNet patches)
    and the logits cropped back.
    """
    h, w = batch["s2"].shape[-2:]
    div = model.requires_divisible_input_shape
    pad = (0, -w % div, 0, -h % div)
    if any(pad):
        inputs = [F.pad(batch[k], pad, mode="reflect") for k in ("s2", "s1", "s2_valid", "s1_valid")]
        padded: Tensor = model(*inputs)
        return padded[..., :h, :w]
    logits: Tensor = model(batch["s2"], batch["s1"], batch["s2_valid"], batch["s1_valid"])
    return logits


def optimisation_step(model: LULCModel, objective: Objective, batch: dict[str, Tensor], optimizer: Optimizer,
                      scaler: torch.amp.GradScaler, cfg: TrainConfig) -> dict[str, Tensor]:  # fmt: skip
    """One step of the loop: loss under ``cfg.amp``, backward, clipping at ``cfg.grad_clip``, update.

    Returns:
        The objective's terms (``loss`` and its parts), still attached to the graph.
    """
    with autocast_for(cfg, batch["s2"].device):
        terms: dict[str, Tensor] = objective(model, batch)
    optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward(scaler.scale(terms["loss"]))
    if cfg.grad_clip > 0:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return terms


def loss_terms(record: dict[str, Any]) -> dict[str, float]:
    """The objective's parts in an epoch record (``ce``, ``anchor``, ``recon_l1``…): not its total, not bookkeeping."""
    return {k: v for k, v in record.items() if k not in RECORD_FIELDS}


def autocast_for(cfg: TrainConfig, device: torch.device) -> Any:
    """The autocast context of ``cfg.amp`` on ``device`` (disabled for ``none``).

    Raises:
        ConfigError: fp16 requested off CUDA.
    """
    if cfg.amp == "none":
        return torch.autocast(device.type, enabled=False)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp=fp16 needs CUDA; use amp=bf16 on CPU")
    return torch.autocast(device.type, dtype=torch.bfloat16 if cfg.amp == "bf16" else torch.float16)


def predict_classes(
    model: LULCModel,
    data: SampleSource,
    batch_size: int,
    device: torch.device,
    inputs: str,
    autocast: AbstractContextManager[Any] | None = None,
) -> Iterator[tuple[list[Sample], npt.NDArray[np.int64]]]:
    """Class maps of a split in batches, in eval mode and without gradients (validation and `evaluate`).

    Yields:
        ``(samples, prediction)`` with prediction (B, H, W) class indices.
    """
    model.eval()
    for start in range(0, len(data), batch_size):
        samples = [data[i] for i in range(start, min(start + batch_size, len(data)))]
        batch = collate(samples, device, inputs)
        with torch.no_grad(), autocast or contextlib.nullcontext():
            logits = predict_logits(model, batch)
        yield samples, logits.argmax(1).cpu().numpy()


def _validate(model: LULCModel, data: SampleSource, cfg: TrainConfig, device: torch.device) -> float | None:
    if len(data) == 0:
        return None
    cm = ConfusionMatrix(model.config.num_classes)
    for samples, prediction in predict_classes(model, data, cfg.batch_size, device, cfg.inputs,
                                               autocast_for(cfg, device)):  # fmt: skip
        cm.update(prediction, np.stack([sample.label for sample in samples]))
    miou = cm.metrics()["miou"]
    return float(miou) if miou is not None else None


def train(cfg: TrainConfig, resume: bool = True, on_epoch: Callable[[dict[str, Any]], None] | None = None,
          stop_after: int | None = None) -> TrainResult:  # fmt: skip
    """Trains (or resumes) a run described by ``cfg``.

    Args:
        cfg: The configuration (validated here).
        resume: Continue from ``OUTPUT/last/state.pt`` when it exists.
        on_epoch: Called with each epoch's log record.
        stop_after: Stop after this epoch index (1-based) even if ``cfg.epochs`` is larger; the
            state is saved, so a later call resumes (tests, time-boxed jobs).

    Returns:
        The result.

    Raises:
        ConfigError: Bad configuration, or a saved state from a different configuration.
        DatasetError: Malformed data (naming the file).
        ProductError: An unusable cloud donor.
    """
    cfg.validate()
    device = torch.device(cfg.device)
    out = Path(cfg.output_dir)
    (out / "last").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    try:
        built = create_model(cfg.variant, **cfg.model)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build variant {cfg.variant!r} with model options {cfg.model}: {exc}") from exc
    if not isinstance(built, LULCModel):
        raise ConfigError(f"variant {cfg.variant!r} is not a mapping network of this package")
    model = built.to(device)
    data = build_datasets(cfg)
    train_set, val_set = data.train, data.val
    weights = None
    if cfg.class_weighting != "none":  # one pass over the training labels
        weights = class_weights(_label_counts(train_set, model.config.num_classes), cfg.class_weighting)
    loss_fn = build_objective(model, cfg, weights).to(device)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    params = [p for p in (*model.parameters(), *loss_fn.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, cfg.warmup_iters, cfg.schedule, cfg.poly_power)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    start_epoch, step, best = 0, 0, None
    state_path = out / "last" / STATE_FILE
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state["config"] != json.dumps(cfg.to_dict(), sort_keys=True, default=list) and not _compatible(state, cfg):
            raise ConfigError("the saved state belongs to a different configuration; use a new output_dir", state_path)
        try:
            model.load_state_dict(state["model"])
            loss_fn.load_state_dict(state["loss"])
        except RuntimeError as exc:  # e.g. a state written by an older version with other module names
            raise ConfigError(f"the saved state does not fit this model and objective ({str(exc)[:200]}); "
                              "use a new output_dir", state_path) from exc  # fmt: skip
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        start_epoch, step = int(state["epoch"]), int(state["step"])
        best = float(state["best_miou"]) if state["best_miou"] is not None else None
    last = min(cfg.epochs, stop_after) if stop_after is not None else cfg.epochs
    for epoch in range(start_epoch, last):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch))
        sums: dict[str, float] = {}
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size].tolist()
            samples = [data.prepare(train_set[i], np.random.default_rng([cfg.seed, epoch, i])) for i in idx]
            terms = optimisation_step(model, loss_fn, collate(samples, device, cfg.inputs), optimizer, scaler, cfg)
            scheduler.step()
            step += 1
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
        due = (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs
        miou = _validate(model, val_set, cfg, device) if due else None
        improved = miou is not None and (best is None or miou > best)
        if improved:
            best = miou
            save_checkpoint(model, out / "best", training={"config": cfg.to_dict(), "epoch": epoch + 1,
                                                           "val_miou": miou, "data": data_description(cfg)})  # fmt: skip
        record = {"epoch": epoch + 1, "step": step, "lr": scheduler.get_last_lr()[0], "val_miou": miou,
                  "best_miou": best, "seconds": round(time.perf_counter() - t0, 2),
                  **{k: v / steps_per_epoch for k, v in sums.items()}}  # fmt: skip
        _save_state(state_path, cfg, epoch + 1, step, best, model, loss_fn, optimizer, scheduler, scaler)
        with (out / "log.jsonl").open("a") as log:
            log.write(json.dumps(record) + "\n")
        if on_epoch is not None:
            on_epoch(record)
    model.eval()
    final = None
    if max(start_epoch, last) == cfg.epochs:
        final = out / "final"
        if not (final / "model_card.json").is_file() or last > start_epoch:
            save_checkpoint(model, final, training={"config": cfg.to_dict(), "epoch": cfg.epochs, "val_miou": best,
                                                    "data": data_description(cfg)})  # fmt: skip
    best_dir = out / "best"
    return TrainResult(max(0, last - start_epoch), max(start_epoch, last), best,
                       best_dir if (best_dir / "model_card.json").is_file() else None, model, final,
                       cfg.epochs)  # fmt: skip


def train_from_config(
    path: str | Path | None,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """`train` on the configuration of a TOML file with ``key=value`` overrides (what ``cloudlulc-edge train`` runs).

    Raises:
        ConfigError: Unreadable or invalid configuration (an unset ``${VARIABLE}`` included).
        DatasetError: Malformed data (naming the file).
    """
    from cloudlulc_edge.training.config import load_config

    return train(load_config(path, overrides), resume=resume, on_epoch=on_epoch)


def _label_counts(data: SampleSource, num_classes: int) -> Tensor:
    """(K,) labelled pixels per class over a training set (for class weighting)."""
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for i in range(len(data)):
        label = torch.from_numpy(data[i].label)
        counts += torch.bincount(label[label < num_classes], minlength=num_classes)
    return counts


def _compatible(state: dict[str, Any], cfg: TrainConfig) -> bool:
    """A resumed run may change only ``epochs`` and ``device`` (options added since take their defaults)."""
    try:
        saved = json.loads(json.dumps(TrainConfig.from_dict(json.loads(state["config"])).to_dict(), default=list))
    except TypeError:  # an option this version no longer has
        return False
    now = json.loads(json.dumps(cfg.to_dict(), sort_keys=True, default=list))
    return {k: v for k, v in saved.items() if k not in ("epochs", "device")} == {
        k: v for k, v in now.items() if k not in ("epochs", "device")
    }


def _save_state(path: Path, cfg: TrainConfig, epoch: int, step: int, best: float | None, *parts: Any) -> None:
    model, loss_fn, optimizer, scheduler, scaler = parts
    state = {
        "config": json.dumps(cfg.to_dict(), sort_keys=True, default=list),
        "epoch": epoch,
        "step": step,
        "best_miou": best,
        "model": model.state_dict(),
        "loss": loss_fn.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))
