"""ONNX export of a CloudLULC-Net variant: static tile, dynamic batch, two flavours.

The graph has the inputs every backend feeds (`INPUT_NAMES`): ``s2`` (B, 12, T, T), ``s1``
(B, 2, T, T), ``s2_valid`` and ``s1_valid`` (B, 1, T, T) float validity (S2-only scenes feed
zeros for ``s1`` and ``s1_valid``, which the model turns into its missing-SAR embeddings), and
one output, ``logits`` (B, 6, T, T). T is fixed (engines want static tiles); B is symbolic.

Flavours (`edge-export.md` §7, §11):

* ``standard``: the fused ops decomposed into standard ONNX ops (kernel mode ``reference``).
  Runs in onnxruntime and in every TensorRT, JetPack 6 included.
* ``plugin``: each fused-op call is one ``cloudlulc`` custom node (`plugin_ops`) for a TensorRT
  Quickly Deployable Plugin with ahead-of-time Triton PTX (TensorRT ≥ 10.8). onnxruntime cannot
  run it; it is checked structurally.

The SHOI spectral term can be exported as ``matmul`` (DFT matrices; parses on every TensorRT) or
``fft`` (ONNX ``DFT``; TensorRT ≥ 11.2 only). The default is ``matmul``.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from torch.export import Dim

from cloudlulc_edge.contract import NUM_CLASSES, S1_CHANNELS, S2_CHANNELS
from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.kernels import use_kernels
from cloudlulc_edge.models.spectral import SpectralImpl, SpectralTerm

__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "DeployModel",
    "OnnxFlavour",
    "export_onnx",
    "input_shapes",
    "validate_onnx",
    "with_spectral",
]

OnnxFlavour = Literal["standard", "plugin"]
#: TensorRT 10.3 (JetPack 6) parses opsets 9–20; Q/DQ needs ≥ 19.
DEFAULT_OPSET = 20
INPUT_NAMES = ("s2", "s1", "s2_valid", "s1_valid")
OUTPUT_NAMES = ("logits",)
_INPUT_CHANNELS = {"s2": S2_CHANNELS, "s1": S1_CHANNELS, "s2_valid": 1, "s1_valid": 1}

log = logging.getLogger(__name__)


def input_shapes(batch: int, tile: int) -> dict[str, tuple[int, int, int, int]]:
    """Shapes of the graph inputs at a batch size.

    Args:
        batch: B.
        tile: T.

    Returns:
        ``{name: (B, C, T, T)}`` in `INPUT_NAMES` order.
    """
    return {name: (batch, _INPUT_CHANNELS[name], tile, tile) for name in INPUT_NAMES}


class DeployModel(nn.Module):
    """The exported signature: all four inputs positional, logits out.

    Args:
        model: A CloudLULC-Net.

    Shape:
        s2 (B, 12, T, T), s1 (B, 2, T, T), s2_valid (B, 1, T, T), s1_valid (B, 1, T, T) → (B, 6, T, T).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, s2: Tensor, s1: Tensor, s2_valid: Tensor, s1_valid: Tensor) -> Tensor:
        """Returns the model's logits."""
        logits: Tensor = self.model(s2, s1, s2_valid, s1_valid)
        return logits


def with_spectral(model: nn.Module, spectral: SpectralImpl | None) -> nn.Module:
    """A copy of ``model`` whose SHOI spectral terms use ``spectral`` (None: keep the model's)."""
    if spectral is None:
        return model
    if spectral not in ("fft", "matmul"):
        raise ExportError(f"unknown spectral implementation {spectral!r}; use 'matmul' or 'fft'")
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, SpectralTerm):
            module.spectral_impl = spectral
    return model


def _example(tile: int, batch: int) -> tuple[Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    return tuple(torch.rand(shape, generator=gen) for shape in input_shapes(batch, tile).values())


def export_onnx(
    model: nn.Module,
    path: str | Path,
    flavour: OnnxFlavour = "standard",
    tile: int = 512,
    max_batch: int = 32,
    opset: int = DEFAULT_OPSET,
    spectral: SpectralImpl | None = "matmul",
) -> Path:
    """Exports ``model`` to ONNX with the dynamo exporter and validates the file.

    Args:
        model: A CloudLULC-Net (exported in eval mode; the caller's model is not modified).
        path: Output ``.onnx`` (written under a temporary name, renamed when valid).
        flavour: ``standard`` or ``plugin``.
        tile: Static tile side T (a multiple of the model's ``requires_divisible_input_shape``, 16 for
            CloudLULC-Net).
        max_batch: Upper bound of the symbolic batch (at least 2, the traced example's batch).
        opset: Default-domain opset (≤ 20 for TensorRT 10.3).
        spectral: ``matmul`` or ``fft`` for the SHOI spectral term, or None for the model's own.

    Returns:
        ``path``.

    Raises:
        ExportError: Unknown flavour, a tile the model cannot take, or an export that fails.
    """
    path = Path(path)
    if flavour not in ("standard", "plugin"):
        raise ExportError(f"unknown ONNX flavour {flavour!r}; use 'standard' or 'plugin'", path)
    multiple = int(getattr(model, "requires_divisible_input_shape", 16))
    if tile % multiple or tile <= 0:
        raise ExportError(f"tile must be a positive multiple of {multiple} for this model, got {tile}", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deploy = DeployModel(with_spectral(model, spectral)).eval()
    batch = Dim("batch", min=1, max=max(max_batch, 2))  # the traced example has 2 tiles
    translation = None
    if flavour == "plugin":
        from cloudlulc_edge.export.plugin_ops import translation_table

        translation = translation_table()
    # "reference" inlines the fused ops as aten ops; "auto" keeps them as cloudlulc.* calls.
    mode = "reference" if flavour == "standard" else "auto"
    with use_kernels(mode), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation chatter, not about this model
        try:
            program = torch.onnx.export(
                deploy,
                _example(tile, 2),  # batch ≥ 2: a size-1 example would be specialised to a constant
                dynamo=True,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes={name: {0: batch} for name in INPUT_NAMES},
                opset_version=opset,
                custom_translation_table=translation,
                verbose=False,
            )
        except Exception as exc:
            raise ExportError(f"ONNX export ({flavour}) failed: {exc}", path) from exc
    if program is None:
        raise ExportError("ONNX export returned no program", path)

    def write(tmp: Path) -> None:
        program.save(str(tmp))
        validate_onnx(tmp, tile, opset)  # a file that fails validation never takes the final name

    return atomic_write(path, write)


def validate_onnx(path: str | Path, tile: int, opset: int = DEFAULT_OPSET) -> None:
    """Checks an exported file: ONNX checker, opset, input/output names, dtypes and shapes.

    Args:
        path: The ``.onnx`` file.
        tile: Expected static tile side.
        opset: Highest allowed default-domain opset.

    Raises:
        ExportError: The first problem found.
    """
    import onnx

    path = Path(path)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"not a valid ONNX model: {exc}", path) from exc
    graph_model = onnx.load(str(path), load_external_data=False)
    default = [o.version for o in graph_model.opset_import if o.domain in ("", "ai.onnx")]
    if not default or default[0] > opset:
        raise ExportError(f"default-domain opset {default} exceeds {opset}", path)
    names = tuple(i.name for i in graph_model.graph.input)
    if names != INPUT_NAMES or tuple(o.name for o in graph_model.graph.output) != OUTPUT_NAMES:
        raise ExportError(f"graph I/O are {names} → {[o.name for o in graph_model.graph.output]}", path)
    expected = {**input_shapes(-1, tile), "logits": (-1, NUM_CLASSES, tile, tile)}
    for value in (*graph_model.graph.input, *graph_model.graph.output):
        ttype = value.type.tensor_type
        dims = tuple(-1 if d.dim_param else d.dim_value for d in ttype.shape.dim)
        if ttype.elem_type != onnx.TensorProto.FLOAT or dims != expected[value.name]:
            raise ExportError(
                f"{value.name} is {onnx.TensorProto.DataType.Name(ttype.elem_type)} {dims}, "
                f"expected FLOAT {expected[value.name]} (-1 = symbolic batch)",
                path,
            )
