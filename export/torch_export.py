"""``torch.export`` of a CloudLULC-Net variant at a static tile size with a dynamic batch.

Engines want static spatial shapes (tiles are fixed-size, `sentinel.md` §13) and a batch range
(TensorRT optimisation profiles). The fused ops are exported through the reference path (kernel
mode ``reference``) so the program holds standard ATen ops only; `onnx_export` builds the ONNX
flavours (standard and TensorRT-plugin) with all four graph inputs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.export import Dim, ExportedProgram

from cloudlulc_edge.contract import S1_CHANNELS, S2_CHANNELS
from cloudlulc_edge.kernels import use_kernels

__all__ = ["ExportInputs", "example_inputs", "export_program"]


class ExportInputs(NamedTuple):
    """Example inputs of an exported program.

    Attributes:
        s2: (B, 12, T, T) optical input.
        s1: (B, 2, T, T) SAR input.
    """

    s2: Tensor
    s1: Tensor


def example_inputs(batch: int = 1, tile: int = 512, seed: int = 0) -> ExportInputs:
    """Deterministic random inputs in the contract's value ranges ([0, 1]).

    Args:
        batch: B.
        tile: Tile side T.
        seed: Generator seed.
    """
    gen = torch.Generator().manual_seed(seed)
    return ExportInputs(
        torch.rand(batch, S2_CHANNELS, tile, tile, generator=gen),
        torch.rand(batch, S1_CHANNELS, tile, tile, generator=gen),
    )


def export_program(
    model: nn.Module,
    tile: int = 512,
    batch: int = 1,
    max_batch: int = 32,
    dynamic_batch: bool = True,
) -> ExportedProgram:
    """Exports ``model(s2, s1) -> logits`` with ``torch.export.export``.

    Args:
        model: A CloudLULC-Net (put in eval mode here).
        tile: Static tile side T (a multiple of 16).
        batch: Batch of the example inputs, and the static batch when ``dynamic_batch`` is False.
            With a dynamic batch at least 2 examples are traced (torch.export specialises a size-1
            dimension to a constant).
        max_batch: Upper bound of the dynamic batch dimension.
        dynamic_batch: Make the batch dimension symbolic in ``[1, max_batch]``.

    Returns:
        The exported program; call ``.module()(s2, s1)`` to run it.
    """
    model.eval()
    inputs = example_inputs(max(batch, 2) if dynamic_batch else batch, tile)
    dynamic_shapes = None
    if dynamic_batch:
        b = Dim("batch", min=1, max=max(max_batch, 2))  # the traced example has 2 tiles
        dynamic_shapes = {"s2": {0: b}, "s1": {0: b}}
    with use_kernels("reference"), torch.no_grad():
        return torch.export.export(model, (inputs.s2, inputs.s1), dynamic_shapes=dynamic_shapes)
