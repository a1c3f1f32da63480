"""Launch settings shared by the Triton kernels: tile shapes, warps, dtypes, device checks."""

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch

# Keep FMA fusion on (Triton 3.9's default, which 3.10 flips): compile checks, interpreter tests
# and GPU runs then agree, and 3.9 stops warning on every process.
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import triton
import triton.language as tl

__all__ = [
    "MAX_CHANNELS",
    "LaunchPlan",
    "TileSettings",
    "accumulator",
    "check_launchable",
    "interpreting",
    "plan_launch",
    "tile_offsets",
    "tile_settings",
]

#: Widest channel count a kernel holds in one tile (the model's widest fused op has 128).
MAX_CHANNELS = 8192

# Elements per program tile. On a GPU ~4096 fp32 values over 4 warps keep ~32 live registers per
# tensor per thread; under the interpreter every program costs ~1.3 ms of Python, so tiles are
# made as large as practical to keep test launches at a handful of programs (`kernels.md` §5).
_GPU_TILE_ELEMENTS = 4096
_INTERPRETER_TILE_ELEMENTS = 1 << 16
# Backward kernels keep about twice as many tensors live, so they get half the tile.
_BACKWARD_TILE_SCALE = 0.5


def interpreting() -> bool:
    """True when kernels run under the Triton CPU interpreter (``TRITON_INTERPRET=1``)."""
    knobs = getattr(triton, "knobs", None)
    if knobs is not None and getattr(knobs.runtime, "interpret", False):
        return True
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def check_launchable(op: str, *tensors: torch.Tensor) -> None:
    """Raises a clear error where a Triton launch would fail with a driver error.

    Args:
        op: Op name for the message.
        *tensors: The launch's tensor arguments.

    Raises:
        RuntimeError: A tensor is not on CUDA and the interpreter is off, or tensors sit on
            different devices.
    """
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise RuntimeError(f"{op}: tensors on different devices {sorted(map(str, devices))}")
    device = next(iter(devices))
    if device.type != "cuda" and not interpreting():
        raise RuntimeError(
            f"{op}: the Triton kernel needs CUDA tensors, got {device}; "
            "set TRITON_INTERPRET=1 to run it on CPU for testing, or CLOUDLULC_KERNELS=reference"
        )


def accumulator(*tensors: torch.Tensor) -> tl.dtype:
    """Returns the kernel math dtype: float64 if any input is float64 (gradcheck), else float32."""
    return tl.float64 if any(t.dtype == torch.float64 for t in tensors) else tl.float32


@dataclass(frozen=True)
class TileSettings:
    """Tile shape and warps of one launch.

    Attributes:
        block_c: Channel lanes, ``next_pow2(C)``; lanes ``>= C`` are masked.
        block_p: Consecutive pixels per program (power of two).
        num_warps: Warps per program.
    """

    block_c: int
    block_p: int
    num_warps: int


def tile_settings(channels: int, pixels: int, op: str, backward: bool = False) -> TileSettings:
    """Chooses the tile for ``channels`` × ``pixels`` (Liger's ``calculate_settings`` idea).

    Args:
        channels: C of the launch.
        pixels: H·W of the launch.
        op: Op name for error messages.
        backward: A backward kernel (half the tile budget).

    Returns:
        The tile settings.

    Raises:
        ValueError: ``channels`` exceeds `MAX_CHANNELS`.
    """
    block_c = triton.next_power_of_2(max(channels, 1))
    if block_c > MAX_CHANNELS:
        raise ValueError(f"{op}: {channels} channels exceed the fused kernels' limit of {MAX_CHANNELS}")
    base = _INTERPRETER_TILE_ELEMENTS if interpreting() else _GPU_TILE_ELEMENTS
    budget = max(int(base * (_BACKWARD_TILE_SCALE if backward else 1.0)), block_c)
    block_p = max(1, min(budget // block_c, triton.next_power_of_2(max(pixels, 1)), 1024))
    num_warps = min(8, max(2, block_c * block_p // 256))  # ≤ 16 fp32 values per thread per tensor
    return TileSettings(block_c, block_p, num_warps)


@dataclass(frozen=True)
class LaunchPlan:
    """Tile and grid of one launch over a (B, C, H, W) tensor; calling it launches a kernel.

    Attributes:
        tile: Tile shape and warps.
        grid: ``(programs per image, B)``.
        device: Device of the launch's tensors.
    """

    tile: TileSettings
    grid: tuple[int, int]
    device: torch.device

    @property
    def programs_per_image(self) -> int:
        """Pixel blocks per image (rows of a per-program partial-sum buffer per image)."""
        return self.grid[0]

    def __call__(self, kernel: Any, *args: Any, **constexprs: Any) -> None:
        """Launches ``kernel`` over the grid with the tile constexprs, on the tensors' GPU.

        Args:
            kernel: A ``@triton.jit`` kernel taking ``BLOCK_C`` and ``BLOCK_P``.
            *args: Its runtime arguments.
            **constexprs: Its feature flags and ``ACC``.
        """
        if self.grid[1] == 0:  # empty batch: nothing to launch
            return
        # Triton launches on the current device, which need not be the tensors' GPU.
        guard = torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()
        with guard:
            kernel[self.grid](
                *args,
                **constexprs,
                BLOCK_C=self.tile.block_c,
                BLOCK_P=self.tile.block_p,
                num_warps=self.tile.num_warps,
            )


def plan_launch(op: str, anchor: torch.Tensor, backward: bool = False) -> LaunchPlan:
    """Plans the launch over ``anchor``'s (B, C, H, W).

    Every image gets at least one program, so its per-image outputs (CHOI's α, partial-sum rows)
    are written even when H·W = 0; those programs' pixel loads and stores are all masked.

    Args:
        op: Op name for error messages.
        anchor: A (B, C, H, W) tensor of the launch.
        backward: A backward kernel (half the tile budget).

    Returns:
        The plan.
    """
    batch, channels, height, width = anchor.shape
    tile = tile_settings(channels, height * width, op, backward)
    return LaunchPlan(tile, (max(1, triton.cdiv(height * width, tile.block_p)), batch), anchor.device)


@triton.jit
def tile_offsets(C, HW, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """This program's tile of image ``program_id(1)``: the layout contract of every kernel.

    Returns:
        ``(n, p, c, mask_p, mask_c, mask, offs)``: image index (int64: B·C·H·W may exceed 2³¹),
        (BLOCK_P,) pixel indices, (BLOCK_C,) channel lanes, their masks, the (BLOCK_C, BLOCK_P) tile
        mask and element offsets into a contiguous (B, C, H, W) tensor.
    """
    n = tl.program_id(1).to(tl.int64)
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.arange(0, BLOCK_C)
    mask_p = p < HW
    mask_c = c < C
    mask = mask_c[:, None] & mask_p[None, :]
    offs = n * C * HW + c[:, None].to(tl.int64) * HW + p[None, :]
    return n, p, c, mask_p, mask_c, mask, offs
