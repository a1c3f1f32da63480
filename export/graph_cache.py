"""The ONNX graphs that ``--backend auto`` runs: carried by the checkpoint, else built once into a cache.

Where a model's graphs for one tile side come from, first match wins:

1. **Carried**: the checkpoint folder holds ``onnx-t<tile>/``, an export directory whose manifest
   records the checkpoint's own weights SHA-256. The packaged default checkpoint carries FP16
   graphs for 512² (``map``) and 128² (``demo``) tiles (`write_carried_graphs`), so the plain
   install runs them without exporting.
2. **Cached**: ``<cache>/onnx/<key>/``, built on first use by `bundle.export_model` (FP32, plus
   FP16 when ModelOpt is installed), keyed by the weights SHA-256, the tile side, this package's
   version and onnxruntime's version. The cache root is ``$CLOUDLULC_EDGE_CACHE``, else
   ``$XDG_CACHE_HOME/cloudlulc-edge``, else ``~/.cache/cloudlulc-edge``.

A cache entry is built in a temporary sibling folder and renamed into place when complete, so a
reader never sees half an export; two processes building one key at once both build, the first
rename wins and the other discards its copy. Every entry is read through `bundle.read_manifest`,
which verifies each artifact's SHA-256; an entry that fails it is rebuilt.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.models.loading import LoadedModel

__all__ = [
    "AUTO_PRECISIONS",
    "CACHE_ENV",
    "cache_root",
    "cached_graph_key",
    "can_build_graphs",
    "carried_graphs",
    "graph_dir",
    "graph_precisions",
    "write_carried_graphs",
]

log = logging.getLogger(__name__)
CACHE_ENV = "CLOUDLULC_EDGE_CACHE"
#: The precisions ``auto`` may pick, fastest first on the machines measured (docs/performance.md,
#: "Which backend auto picks"); INT8 is never picked without being asked for (looser gate).
AUTO_PRECISIONS = ("fp16", "fp32")


def cache_root() -> Path:
    """The cache folder (not created): ``$CLOUDLULC_EDGE_CACHE``, ``$XDG_CACHE_HOME/cloudlulc-edge`` or ``~/.cache/…``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cloudlulc-edge"


def cached_graph_key(weights_sha256: str, tile: int) -> str:
    """The cache entry name of one model's graphs at one tile side (``<sha16>-t<tile>-v<pkg>-ort<ver>``).

    The onnxruntime version comes from the module, not the distribution: on GPUs the module is
    installed by ``onnxruntime-gpu``, whose distribution is not called ``onnxruntime``.
    """
    import onnxruntime

    from cloudlulc_edge.version import __version__

    return f"{weights_sha256[:16]}-t{tile}-v{__version__}-ort{onnxruntime.__version__}"


def can_build_graphs() -> bool:
    """Whether this install can export ONNX graphs (onnx, onnxscript and onnxruntime importable)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxscript", "onnxruntime"))


def graph_precisions(export_dir: Path) -> list[str]:
    """The standard-flavour precisions an export directory holds (``model_<precision>.onnx`` files)."""
    return [p for p in ("fp32", "fp16", "int8") if (export_dir / f"model_{p}.onnx").is_file()]


def _verified(folder: Path, weights_sha256: str) -> bool:
    """Whether ``folder`` is an intact export of the weights ``weights_sha256``."""
    from cloudlulc_edge.export.bundle import MANIFEST_FILE, read_manifest

    if not (folder / MANIFEST_FILE).is_file():
        return False
    try:
        manifest = read_manifest(folder)
    except ExportError as exc:
        log.warning("%s", exc)
        return False
    model = manifest.get("model")
    return isinstance(model, dict) and model.get("weights_sha256") == weights_sha256


def carried_graphs(loaded: LoadedModel, tile: int) -> Path | None:
    """The checkpoint's own ``onnx-t<tile>/`` export when it is intact and of these weights, else None."""
    if loaded.checkpoint is None:
        return None
    folder = loaded.checkpoint / f"onnx-t{tile}"
    return folder if _verified(folder, loaded.identity.sha256) else None


def graph_dir(loaded: LoadedModel, tile: int, build: bool = True) -> Path | None:
    """The export directory with this model's graphs at ``tile``: carried, cached, or built now into the cache.

    Args:
        loaded: A trained model (`models.loading.load_model`).
        tile: Static tile side of the graphs.
        build: Build a missing cache entry (≈ 30 s for FP32 on a 2-core CPU, as much again for
            FP16); False only looks.

    Returns:
        The folder, or None when there is none and ``build`` is False or this install cannot export.
        Needs onnxruntime installed (the cache key names its version).

    Raises:
        ExportError: Untrained weights (they are never exported for mapping), or a failed export.
    """
    if not loaded.identity.trained:
        raise ExportError("untrained weights are not exported for mapping; run them with --backend torch")
    carried = carried_graphs(loaded, tile)
    if carried is not None:
        return carried
    entry = cache_root() / "onnx" / cached_graph_key(loaded.identity.sha256, tile)
    if _verified(entry, loaded.identity.sha256):
        return entry  # a cached graph runs without the exporter (onnx, onnxscript)
    if not build or not can_build_graphs():
        return None
    return _build_entry(loaded, tile, entry)


def _build_entry(loaded: LoadedModel, tile: int, entry: Path) -> Path:
    """Exports into a temporary sibling of ``entry`` and renames it into place (the first rename wins)."""
    from cloudlulc_edge.export.bundle import ExportOptions, export_model

    precisions = ("fp32", "fp16") if importlib.util.find_spec("modelopt") is not None else ("fp32",)
    entry.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the ONNX graphs (%s) of %s at %d² tiles into %s (once)", "/".join(precisions),
             loaded.identity.name, tile, entry)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        export_model(loaded.model, loaded.identity, work, ExportOptions(tile=tile, precisions=precisions, plugin=False))
        try:
            work.rename(entry)
        except OSError:  # another process renamed its build first (or a broken entry is in the way)
            if not _verified(entry, loaded.identity.sha256):
                shutil.rmtree(entry, ignore_errors=True)
                work.rename(entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return entry


def write_carried_graphs(loaded: LoadedModel, tile: int = 512, precisions: tuple[str, ...] = ("fp16",)) -> Path:
    """Exports the graphs a checkpoint carries into ``<checkpoint>/onnx-t<tile>/`` (for publishing a checkpoint).

    The FP32 graph is always exported (the others derive from it and are checked against it) but
    kept only when asked for; the manifest lists just the kept files.

    Raises:
        ExportError: No checkpoint folder, or a failed export.
    """
    import json

    from cloudlulc_edge.export.bundle import MANIFEST_FILE, ExportOptions, export_model
    from cloudlulc_edge.files import atomic_write

    if loaded.checkpoint is None:
        raise ExportError("only a checkpoint folder can carry graphs")
    target = loaded.checkpoint / f"onnx-t{tile}"
    with tempfile.TemporaryDirectory() as work:
        manifest = export_model(loaded.model, loaded.identity, work,
                                ExportOptions(tile=tile, precisions=("fp32", *precisions), plugin=False))  # fmt: skip
        manifest["artifacts"] = [a for a in manifest["artifacts"] if a["precision"] in precisions]
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for artifact in manifest["artifacts"]:
            shutil.copyfile(Path(work) / artifact["file"], target / artifact["file"])
        atomic_write(target / MANIFEST_FILE, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1) + "\n"))
    return target
