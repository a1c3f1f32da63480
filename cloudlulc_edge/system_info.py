"""What this installation can run: versions, devices, backends, kernel dispatch, model variants.

`system_info` collects it for ``cloudlulc-edge info`` (and for anyone reporting a problem).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudlulc_edge.version import __version__

__all__ = ["SystemInfo", "VariantInfo", "system_info"]


@dataclass(frozen=True)
class VariantInfo:
    """One registered variant.

    Attributes:
        name: Variant name.
        architecture: Its family.
        summary: Its size-setting configuration in one line.
        params_m: Parameters in millions (None when not built).
        trained: Whether the package ships trained weights for it.
    """

    name: str
    architecture: str
    summary: str
    params_m: float | None
    trained: bool


@dataclass(frozen=True)
class SystemInfo:
    """The installation.

    Attributes:
        package: cloudlulc-edge version.
        python: Python version.
        torch: torch version.
        cuda_device: Name of CUDA device 0, or ``none``.
        triton_importable: Whether Triton can be imported.
        kernel_mode: ``CLOUDLULC_KERNELS`` mode.
        onnxruntime: onnxruntime version and providers, or why it is missing.
        tensorrt: TensorRT version, or why it is missing.
        kernels: Fused op → its implementations.
        auto_backend: What ``--backend auto`` runs for the packaged default model at 512² tiles on
            this machine's device, and why (`backends.factory.choose_backend`; nothing is built).
        variants: The registered variants.
        card: A checkpoint's model card, if one was asked for.
    """

    package: str
    python: str
    torch: str
    cuda_device: str
    triton_importable: bool
    kernel_mode: str
    onnxruntime: str
    tensorrt: str
    kernels: dict[str, list[str]]
    auto_backend: str = ""
    variants: list[VariantInfo] = field(default_factory=list)
    card: dict[str, Any] | None = None


def system_info(build_models: bool = True, checkpoint: str | Path | None = None) -> SystemInfo:
    """Collects `SystemInfo`.

    Args:
        build_models: Build each variant to count its parameters.
        checkpoint: Also read this checkpoint's model card.

    Raises:
        ModelCardError: The checkpoint's card is missing or malformed.
    """
    import torch

    from cloudlulc_edge.kernels import available_implementations, get_kernel_mode
    from cloudlulc_edge.kernels.dispatch import triton_importable
    from cloudlulc_edge.models import VARIANT_CONFIGS, create_model, list_models
    from cloudlulc_edge.models.architectures import architecture_for_config
    from cloudlulc_edge.models.checkpoint import read_card
    from cloudlulc_edge.weights import default_checkpoint

    variants = []
    for name in list_models():
        cfg = VARIANT_CONFIGS[name]
        params = sum(p.numel() for p in create_model(name).parameters()) / 1e6 if build_models else None
        variants.append(VariantInfo(name, architecture_for_config(cfg).name, cfg.summary(), params,
                                    default_checkpoint(name) is not None))  # fmt: skip
    return SystemInfo(
        package=__version__,
        python=platform.python_version(),
        torch=torch.__version__,
        cuda_device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        triton_importable=triton_importable(),
        kernel_mode=get_kernel_mode(),
        onnxruntime=_onnxruntime(),
        tensorrt=_tensorrt(),
        kernels=available_implementations(),
        auto_backend=_auto_backend("cuda" if torch.cuda.is_available() else "cpu"),
        variants=variants,
        card=read_card(checkpoint).to_dict() if checkpoint is not None else None,
    )


def _auto_backend(device: str) -> str:
    from cloudlulc_edge.backends.factory import BackendSpec, choose_backend
    from cloudlulc_edge.errors import CloudLULCError

    try:
        resolved = choose_backend(BackendSpec(device=device), build=False)
    except CloudLULCError as exc:
        return f"auto cannot run the default model here: {exc}"
    return f"{resolved.spec.kind} on {device} — {resolved.reason}"


def _onnxruntime() -> str:
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime not installed (pip install onnxruntime)"
    providers = ", ".join(p.removesuffix("ExecutionProvider") for p in ort.get_available_providers())
    return f"onnxruntime {ort.__version__} ({providers})"


def _tensorrt() -> str:
    try:
        import tensorrt as trt
    except ImportError:
        return "tensorrt not importable (tensorrt extra / JetPack)"
    return f"tensorrt {trt.__version__}"
