"""Checkpoint I/O: safetensors weights plus a model card, written atomically, loaded with checks.

A checkpoint is a directory holding ``model.safetensors`` and ``model_card.json``. Loading never
unpickles anything: weights come from safetensors, metadata from JSON, and the weights' SHA-256
must match the card. Any mismatch between card, weights and model is a `ModelCardError` naming
the file and the problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cloudlulc_edge.contract import DEFAULT_CONTRACT, InputContract
from cloudlulc_edge.errors import ModelCardError
from cloudlulc_edge.files import atomic_write, sha256_file
from cloudlulc_edge.models.architectures import ARCHITECTURES, architecture_of
from cloudlulc_edge.models.base import LULCModel
from cloudlulc_edge.models.card import ModelCard

__all__ = ["CARD_FILE", "WEIGHTS_FILE", "load_checkpoint", "read_card", "save_checkpoint", "sha256_file"]

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"


def save_checkpoint(
    model: LULCModel,
    directory: str | Path,
    contract: InputContract = DEFAULT_CONTRACT,
    training: dict[str, Any] | None = None,
) -> Path:
    """Saves weights and card into ``directory`` (created if needed).

    The weights are written first and the card last, each atomically, so a directory with a card
    always holds the complete weights the card describes.

    Args:
        model: The network (its architecture, ``variant`` and ``config`` go into the card).
        directory: Checkpoint directory.
        contract: Input contract the model was trained with.
        training: What the model was trained on (data, labels, steps, metrics).

    Returns:
        The checkpoint directory.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = out / WEIGHTS_FILE
    atomic_write(weights, lambda p: save_file(state, str(p), metadata={"variant": model.variant}))
    architecture = architecture_of(model)
    card = ModelCard(
        architecture=architecture.name,
        description=architecture.description,
        variant=model.variant,
        config=model.config,
        contract=contract,
        weights_sha256=sha256_file(weights),
        training=dict(training or {}),
    )
    atomic_write(out / CARD_FILE, lambda p: p.write_text(json.dumps(card.to_dict(), indent=2) + "\n"))
    return out


def _resolve(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    directory = p.parent if p.suffix == ".safetensors" or p.name == CARD_FILE else p
    if not directory.is_dir():
        raise ModelCardError("checkpoint directory does not exist", directory)
    return directory / WEIGHTS_FILE, directory / CARD_FILE


def read_card(path: str | Path) -> ModelCard:
    """Reads and validates the card of a checkpoint directory (or of its weights/card file).

    Raises:
        ModelCardError: The card is missing, not JSON, or malformed.
    """
    _, card_path = _resolve(path)
    if not card_path.is_file():
        raise ModelCardError(f"no {CARD_FILE} beside the weights; every checkpoint needs its model card", card_path)
    try:
        data = json.loads(card_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"model card is not valid JSON: {exc}", card_path) from exc
    if not isinstance(data, dict):
        raise ModelCardError("model card must be a JSON object", card_path)
    return ModelCard.from_dict(data, card_path)


def load_checkpoint(
    path: str | Path,
    expected_variant: str | None = None,
    contract: InputContract = DEFAULT_CONTRACT,
    map_location: str | torch.device = "cpu",
) -> tuple[LULCModel, ModelCard]:
    """Builds the model described by a checkpoint's card and loads its weights.

    Args:
        path: Checkpoint directory, or its ``model.safetensors`` / ``model_card.json``.
        expected_variant: If given, the card's variant must equal it.
        contract: The contract the caller's readers produce (the package default).
        map_location: Device for the weights.

    Returns:
        ``(model, card)``, the model in eval mode.

    Raises:
        ModelCardError: Missing files, a malformed card, a card that does not match the package or
            the expected variant, weights whose hash differs from the card, weights whose
            tensors do not fit the model the card describes, or weights that are not finite.
    """
    weights, card_path = _resolve(path)
    card = read_card(card_path)
    card.check_against(contract, card_path)
    if expected_variant is not None and card.variant != expected_variant:
        raise ModelCardError(f"checkpoint is a {card.variant!r} model, expected {expected_variant!r}", card_path)
    if not weights.is_file():
        raise ModelCardError(f"no {WEIGHTS_FILE} beside the model card", weights)
    actual = sha256_file(weights)
    if actual != card.weights_sha256:
        raise ModelCardError(
            f"weights SHA-256 {actual[:12]}… does not match the card's {card.weights_sha256[:12]}…; "
            "the weights were replaced or corrupted",
            weights,
        )
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise ModelCardError(f"cannot read safetensors weights: {exc}", weights) from exc
    model = ARCHITECTURES[card.architecture].model_type(card.config)
    model.variant = card.variant
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = [
            f"{label}: {names[:5]}{' …' if len(names) > 5 else ''}"
            for label, names in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong))
            if names
        ]
        raise ModelCardError("weights do not fit the model the card describes (" + "; ".join(parts) + ")", weights)
    not_finite = sorted(k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if not_finite:
        raise ModelCardError(f"weights hold NaN or infinite values ({', '.join(not_finite[:5])}"
                             f"{' …' if len(not_finite) > 5 else ''}): a diverged or corrupted training run",
                             weights)  # fmt: skip
    model.load_state_dict(state)
    model.to(map_location).eval()
    return model, card
