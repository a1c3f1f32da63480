"""The cross-modal spectral term of SHOI: a per-channel 2-D convolution of two feature maps.

``A = 𝓕⁻¹(𝓕(a) · 𝓕(g))`` is the circular convolution ``a ⊛ g`` of every channel of ``a`` with the
same channel of ``g``: a global, cross-modal spatial interaction at O(HW log HW) cost
(`model.md` §6.1). Two numerically equivalent implementations:

* ``fft``: ``torch.fft.rfft2`` / ``irfft2`` (cuFFT on GPU). ONNX exports it as ``DFT``, which
  TensorRT parses only from 11.2 on.
* ``matmul``: the same real DFT written as products with precomputed cosine/sine matrices
  (`edge-export.md` §7a). Runs in every runtime (MatMul is universal, DLA included) at about
  6·n³ multiply-adds per n×n transform; the choice for TensorRT 10.x / Jetson engines.

Both compute in float32 even under autocast (FFT numerics in half precision are poor).

Three forms (`SpectralForm`, the ``spectral`` field of the model configuration):

* ``circular`` (SHIP, the paper): ``a ⊛ g`` with wrap-around: the tile's left edge influences its
  right edge.
* ``linear``: zero-padded to 2H×2W first, the centred ("same") linear convolution. No wrap-around,
  but still tile-global: every output pixel sums over every pixel of both maps, so the answer
  changes with where the tile grid falls.
* ``local``: the same convolution restricted to a (2r+1)² window around each pixel,
  ``y[m] = mean_{|d|≤r} a[m − d] · g[m + d]`` (the centred convolution ``(a ⊛ g)[2m]`` summed over
  the pairs within r of m). Translation-equivariant with a bounded receptive field, so a tiled
  map equals a whole-scene map away from the tile borders; plain Slice/Mul/Add in every runtime.
  The tile-independent edge profile uses it (`model.md` §6.5 reconstruction choice).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SpectralForm",
    "SpectralImpl",
    "SpectralTerm",
    "circular_conv2d",
    "circular_conv2d_direct",
    "local_conv2d",
]

SpectralImpl = Literal["fft", "matmul"]
SpectralForm = Literal["circular", "linear", "local"]


def _dft_matrices(n: int, device: torch.device, half: bool) -> tuple[Tensor, Tensor]:
    """cos/sin DFT matrices: ``C[k, m] = cos(2πkm/n)``, ``S[k, m] = sin(2πkm/n)``.

    Args:
        n: Transform length.
        device: Where to build them.
        half: Only the non-negative frequencies ``k = 0..n//2`` (real-input DFT).

    Returns:
        Two (n//2+1 or n, n) float32 matrices.
    """
    k = torch.arange(n // 2 + 1 if half else n, device=device, dtype=torch.int64)
    m = torch.arange(n, device=device, dtype=torch.int64)
    # k·m mod n keeps the angle exact for large n (avoids float error growing with k·m).
    angle = (torch.outer(k, m) % n).to(torch.float32) * (2.0 * math.pi / n)
    return torch.cos(angle), torch.sin(angle)


def _conv_fft(a: Tensor, g: Tensor) -> Tensor:
    h, w = a.shape[-2:]
    out: Tensor = torch.fft.irfft2(torch.fft.rfft2(a) * torch.fft.rfft2(g), s=(h, w))
    return out


def _conv_matmul(a: Tensor, g: Tensor) -> Tensor:
    h, w = a.shape[-2:]
    ch, sh = _dft_matrices(h, a.device, half=False)  # (h, h)
    cw, sw = _dft_matrices(w, a.device, half=True)  # (w//2+1, w)

    def rdft2(x: Tensor) -> tuple[Tensor, Tensor]:
        # Along W (real input, half spectrum): X = x·(Cw − i·Sw)ᵀ.
        xr, xi = x @ cw.T, -(x @ sw.T)  # (..., h, w//2+1)
        # Along H (complex): (Ch − i·Sh)(xr + i·xi).
        return ch @ xr + sh @ xi, ch @ xi - sh @ xr

    ar, ai = rdft2(a)
    gr, gi = rdft2(g)
    pr, pi = ar * gr - ai * gi, ar * gi + ai * gr  # spectral product
    # Inverse along H (complex): (Ch + i·Sh)(pr + i·pi) / h.
    yr = (ch @ pr - sh @ pi) / h
    yi = (ch @ pi + sh @ pr) / h
    # Inverse real DFT along W from the half spectrum: bins 1..ceil(w/2)-1 count twice; the
    # imaginary parts of DC and Nyquist drop out because sin vanishes there (as in irfft).
    weight = torch.full((w // 2 + 1, 1), 2.0, device=a.device)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    return (yr @ (cw * weight) - yi @ (sw * weight)) / w


def circular_conv2d(a: Tensor, g: Tensor, impl: SpectralImpl = "fft", linear: bool = False) -> Tensor:
    """Per-channel 2-D convolution of ``a`` with ``g`` through the frequency domain.

    Args:
        a: (B, C, H, W) main-stream features.
        g: (B, C, H, W) guide features (same shape).
        impl: ``fft`` (torch.fft) or ``matmul`` (DFT matrices, exportable to any runtime).
        linear: Zero-pad to (2H, 2W) and crop the centred H×W window: a linear convolution
            without wrap-around. Default False: circular, as in SHIP.

    Returns:
        (B, C, H, W) float32 convolution ``a ⊛ g``.

    Raises:
        ValueError: Shapes differ or ``impl`` is unknown.
    """
    if a.shape != g.shape:
        raise ValueError(f"spectral term needs equal shapes, got {tuple(a.shape)} and {tuple(g.shape)}")
    h, w = a.shape[-2:]
    a32, g32 = a.float(), g.float()
    if linear:
        a32 = F.pad(a32, (0, w, 0, h))
        g32 = F.pad(g32, (0, w, 0, h))
    if impl == "fft":
        fn = _conv_fft
    elif impl == "matmul":
        fn = _conv_matmul
    else:
        raise ValueError(f"unknown spectral implementation {impl!r}; use 'fft' or 'matmul'")
    device_type = a.device.type
    if torch.is_autocast_enabled(device_type):
        with torch.autocast(device_type, enabled=False):  # keep FFT/DFT numerics in fp32
            out = fn(a32, g32)
    else:
        out = fn(a32, g32)
    if linear:
        out = out[..., h // 2 : h // 2 + h, w // 2 : w // 2 + w]
    return out


def local_conv2d(a: Tensor, g: Tensor, window: int) -> Tensor:
    """Windowed centred convolution ``y[m] = mean_{|d|≤r} a[m − d] · g[m + d]``, r = window // 2.

    Positions outside the map count as zeros (and still count in the mean, so every output pixel
    averages the same number of products and no per-pixel statistic depends on the tile border).

    Args:
        a: (B, C, H, W) main-stream features.
        g: (B, C, H, W) guide features (same shape).
        window: Odd window side 2r + 1 (1: the plain product ``a ⊙ g``).

    Returns:
        (B, C, H, W) float32.

    Raises:
        ValueError: Shapes differ or the window is not a positive odd number.
    """
    if a.shape != g.shape:
        raise ValueError(f"spectral term needs equal shapes, got {tuple(a.shape)} and {tuple(g.shape)}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the local spectral window must be a positive odd number, got {window}")
    r = window // 2
    h, w = a.shape[-2:]
    a32 = F.pad(a.float(), (r, r, r, r))
    g32 = F.pad(g.float(), (r, r, r, r))
    out = torch.zeros(a.shape, dtype=torch.float32, device=a.device)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            # a[m − d] sits at padded index m + r − d, g[m + d] at m + r + d.
            out = out + (a32[..., r - dy : r - dy + h, r - dx : r - dx + w]
                         * g32[..., r + dy : r + dy + h, r + dx : r + dx + w])  # fmt: skip
    return out / float(window * window)


class SpectralTerm(nn.Module):
    """The spectral term as a (parameter-free) module, in one of the three `SpectralForm` forms.

    Being a module gives the spectral term its own name scope in exported graphs
    (``….recursion.spectral``), which is how the export keeps it out of INT8.

    Args:
        spectral_impl: ``fft`` or ``matmul`` (circular and linear forms); exports may switch it on a
            copy of the model.
        form: ``circular``, ``linear`` or ``local`` (see the module docstring).
        window: Window side of the ``local`` form (odd).

    Shape:
        a (B, C, H, W), g (B, C, H, W) → (B, C, H, W) float32.
    """

    def __init__(self, spectral_impl: SpectralImpl = "fft", form: SpectralForm = "circular", window: int = 7) -> None:
        super().__init__()
        if form not in ("circular", "linear", "local"):
            raise ValueError(f"unknown spectral form {form!r}; use circular, linear or local")
        self.spectral_impl: SpectralImpl = spectral_impl
        self.form: SpectralForm = form
        self.window = window

    def forward(self, a: Tensor, g: Tensor) -> Tensor:
        """Returns ``a ⊛ g`` in the configured form."""
        if self.form == "local":
            return local_conv2d(a, g, self.window)
        return circular_conv2d(a, g, self.spectral_impl, self.form == "linear")


def circular_conv2d_direct(a: Tensor, g: Tensor) -> Tensor:
    """Direct O((HW)²) circular convolution, ``y[m, n] = Σ_ij a[i, j] · g[(m−i) mod H, (n−j) mod W]``.

    The oracle for tests on small inputs; never used by the model.

    Args:
        a: (B, C, H, W).
        g: (B, C, H, W).

    Returns:
        (B, C, H, W) in float64.
    """
    a64, g64 = a.double(), g.double()
    h, w = a.shape[-2:]
    out = torch.zeros_like(a64)
    for i in range(h):
        for j in range(w):
            out += a64[..., i : i + 1, j : j + 1] * torch.roll(g64, shifts=(i, j), dims=(-2, -1))
    return out
