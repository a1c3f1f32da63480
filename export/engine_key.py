"""The compatibility key of a TensorRT engine, and refusal of engines built for another system.

A serialized engine runs only with the TensorRT version and GPU architecture that built it, and
it is executable code (`edge-export.md` §3, §5). Every engine is therefore stored with the key
of (TensorRT version, CUDA version, GPU name and compute capability, L4T release on Jetson,
precision, profile shapes, sha256 of the ONNX it came from), and loading compares that key with
the running system before a single byte of the plan is deserialized.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cloudlulc_edge.errors import EngineCompatibilityError, ExportError

__all__ = ["EngineKey", "SystemIdentity", "check_engine_key", "probe_system", "read_l4t_release", "version_tuple"]

_NV_TEGRA_RELEASE = Path("/etc/nv_tegra_release")


@dataclass(frozen=True)
class SystemIdentity:
    """What an engine depends on in the machine that runs it.

    Attributes:
        tensorrt: TensorRT version (``10.3.0``…).
        cuda: CUDA runtime version (``12.6``…).
        gpu: GPU name (``NVIDIA H100 80GB HBM3``, ``Orin``…).
        compute_capability: ``major.minor`` (``9.0``, ``8.7``…).
        l4t: Jetson Linux release (``36.4.3``), or ``""`` off Jetson.
    """

    tensorrt: str
    cuda: str
    gpu: str
    compute_capability: str
    l4t: str = ""

    def digest(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON (names timing caches)."""
        return _digest(asdict(self))


@dataclass(frozen=True)
class EngineKey:
    """System plus build: an engine is usable only where every field matches.

    Attributes:
        system: The machine the engine was built on.
        precision: ``fp32``, ``fp16`` or ``int8`` (the ONNX it was parsed from).
        flavour: ONNX flavour (``standard`` or ``plugin``).
        profiles: Per profile, ``{input: [min, opt, max] shapes}``.
        onnx_sha256: SHA-256 of the ONNX file.
        version_compatible: Built with ``VERSION_COMPATIBLE`` (then a newer TensorRT may load it).
    """

    system: SystemIdentity
    precision: str
    flavour: str
    profiles: tuple[tuple[tuple[str, tuple[tuple[int, ...], ...]], ...], ...]
    onnx_sha256: str
    version_compatible: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored beside the engine)."""
        out = asdict(self)
        out["profiles"] = [{name: [list(s) for s in shapes] for name, shapes in p} for p in self.profiles]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineKey:
        """Inverse of `to_dict`.

        Raises:
            ExportError: Missing or malformed fields.
        """
        try:
            system = SystemIdentity(**data["system"])
            profiles = tuple(
                tuple((name, tuple(tuple(int(d) for d in s) for s in shapes)) for name, shapes in p.items())
                for p in data["profiles"]
            )
            return cls(
                system,
                str(data["precision"]),
                str(data["flavour"]),
                profiles,
                str(data["onnx_sha256"]),
                bool(data.get("version_compatible", False)),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ExportError(f"malformed engine key: {exc!r}") from exc

    def digest(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON: the engine's file-name stem."""
        return _digest(self.to_dict())


def _digest(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_engine_key(stored: EngineKey, running: SystemIdentity, onnx_sha256: str | None, path: Path) -> None:
    """Refuses an engine whose key does not match the running system.

    With ``version_compatible`` a newer TensorRT of the same major version may load the engine
    (TensorRT's forward compatibility); every other field must be equal.

    Args:
        stored: Key saved with the engine.
        running: The system that wants to load it (`probe_system`).
        onnx_sha256: Expected ONNX hash (None: not checked).
        path: Engine file, for the message.

    Raises:
        EngineCompatibilityError: Naming every mismatching field, and what to do.
    """
    problems = []
    for f in fields(SystemIdentity):
        built, here = getattr(stored.system, f.name), getattr(running, f.name)
        if built == here:
            continue
        if f.name == "tensorrt" and stored.version_compatible and _same_major_not_older(built, here):
            continue
        problems.append(f"{f.name}: engine {built!r}, this system {here!r}")
    if onnx_sha256 is not None and stored.onnx_sha256 != onnx_sha256:
        problems.append(f"onnx_sha256: engine {stored.onnx_sha256[:12]}…, expected {onnx_sha256[:12]}…")
    if problems:
        raise EngineCompatibilityError(
            "engine was built for another system and is refused (engines are executable; never load a "
            "mismatching plan): " + "; ".join(problems) + ". Rebuild it here with `cloudlulc-edge engine build`.",
            path,
        )


def version_tuple(text: str) -> tuple[int, ...]:
    """Major, minor, patch of a version string (``10.8.0.43`` → ``(10, 8, 0)``)."""
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _same_major_not_older(built: str, here: str) -> bool:
    b, h = version_tuple(built), version_tuple(here)
    return bool(b) and bool(h) and b[0] == h[0] and h >= b


def read_l4t_release(path: Path = _NV_TEGRA_RELEASE) -> str:
    """Jetson Linux release from ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.3`` → ``36.4.3``).

    Returns ``""`` off Jetson.
    """
    if not path.is_file():
        return ""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", path.read_text(errors="replace"))
    return f"{match.group(1)}.{match.group(2)}" if match else ""


def probe_system() -> SystemIdentity:
    """Identifies the running system: TensorRT from its bindings, the GPU from torch or ``nvidia-smi``.

    Raises:
        ExportError: TensorRT is not importable or no GPU is visible.
    """
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ExportError(f"TensorRT is not importable ({exc}); install the 'tensorrt' extra or JetPack") from exc
    import torch

    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return SystemIdentity(
            str(trt.__version__), str(torch.version.cuda or ""), torch.cuda.get_device_name(), f"{major}.{minor}",
            read_l4t_release(),
        )  # fmt: skip
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise ExportError("no CUDA GPU visible (torch.cuda unavailable and no nvidia-smi)")
    out = subprocess.run(
        [smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not out:
        raise ExportError("nvidia-smi lists no GPU")
    name, cap = (part.strip() for part in out.splitlines()[0].rsplit(",", 1))
    # Without torch CUDA the driver's CUDA version is the best available stand-in for the runtime's.
    banner = subprocess.run([smi], capture_output=True, text=True, check=False).stdout
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", banner)
    return SystemIdentity(str(trt.__version__), cuda.group(1) if cuda else "", name, cap, read_l4t_release())
