"""Build TensorRT engines on the target, and load them only where they were built.

The same code path serves TensorRT 10.x (JetPack 6/7, x86) and 11.x (`edge-export.md` §3): a
strongly typed network (precision comes from the ONNX: FP32, AutoCast FP16 or Q/DQ INT8), the
ONNX parser, one optimisation profile per deployment mode, a workspace cap, a timing cache keyed
by the system, optional version-compatible engines and a DLA option for AGX Orin (static shape,
GPU fallback, a layer-placement report from the engine inspector). There are no calibrators and
no precision flags, except the optional ``BuilderFlag.FP16`` fallback that only 10.x has.

Engines are executable artifacts: each is stored under the digest of its `EngineKey` with the key
beside it, and `load_engine` refuses a plan whose key does not match the running system before
deserializing it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export.engine_key import EngineKey, SystemIdentity, check_engine_key, probe_system, version_tuple
from cloudlulc_edge.export.profiles import BatchProfile, derive_profiles, profile_shapes
from cloudlulc_edge.files import atomic_write, sha256_file

__all__ = [
    "DFT_MIN_VERSION",
    "EngineArtifact",
    "EngineBuildOptions",
    "build_engine",
    "engine_key_for",
    "load_engine",
    "read_engine_key",
    "spectral_choice",
    "verify_engine",
]

log = logging.getLogger(__name__)
#: TensorRT parses ONNX DFT (through its FFT plugin) from 11.2.
DFT_MIN_VERSION = (11, 2)
ENGINE_FILE = "model.engine"
KEY_FILE = "key.json"
#: Written at build time: the engine's SHA-256 and size. An engine is executable code (TensorRT's
#: security notes), so a plan whose bytes differ from what this machine built is never loaded.
ENGINE_MANIFEST = "engine.json"
LAYERS_FILE = "layers.json"


@dataclass(frozen=True)
class EngineBuildOptions:
    """How to build.

    Attributes:
        modes: Deployment modes, one profile each (`profiles.DEPLOYMENT_MODES`).
        batch: Throughput ``opt`` batch and static DLA batch.
        max_batch: Throughput ``max`` batch.
        workspace_mib: Workspace pool cap (keep small on 8–16 GB Jetsons).
        optimization_level: Builder optimisation level 0–5.
        version_compatible: Embed the lean runtime (datacenter fleets with mixed TensorRT).
        dla_core: Build for DLA core 0/1 with GPU fallback (AGX Orin), or None.
        fp16_flag: Also set ``BuilderFlag.FP16`` (TensorRT 10.x weakly typed fallback only).
    """

    modes: tuple[str, ...] = ("throughput",)
    batch: int = 8
    max_batch: int = 16
    workspace_mib: int = 1024
    optimization_level: int = 3
    version_compatible: bool = False
    dla_core: int | None = None
    fp16_flag: bool = False


@dataclass(frozen=True)
class EngineArtifact:
    """A built engine on disk.

    Attributes:
        directory: ``engines/<key digest>/``.
        engine: The plan file.
        key: Its compatibility key.
        build_s: Build wall time.
        layers_on_dla: Layers placed on the DLA (DLA builds), else None.
        layers_total: Layers in the engine, when the inspector reports them.
    """

    directory: Path
    engine: Path
    key: EngineKey
    build_s: float
    layers_on_dla: int | None
    layers_total: int | None


def _import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ExportError(
            f"TensorRT is not importable ({exc}); engines are built on the target: install the 'tensorrt' "
            "extra (x86/SBSA) or use JetPack's python3-libnvinfer"
        ) from exc
    return trt


def spectral_choice(trt_version: str, graph_has_dft: bool) -> str:
    """Says how a graph's SHOI spectral term will build on a TensorRT version.

    Returns:
        ``matmul`` (DFT matrices; every version) or ``dft`` (ONNX DFT via the FFT plugin).

    Raises:
        ExportError: The graph has ``DFT`` and TensorRT is older than 11.2.
    """
    if not graph_has_dft:
        return "matmul"
    if version_tuple(trt_version) < DFT_MIN_VERSION:
        raise ExportError(
            f"this ONNX uses ONNX DFT, which TensorRT {trt_version} cannot parse (needs ≥ 11.2); "
            "export with --spectral matmul"
        )
    return "dft"


def engine_key_for(
    system: SystemIdentity, onnx_path: Path, precision: str, flavour: str, profiles: list[BatchProfile], tile: int,
    version_compatible: bool,
) -> EngineKey:  # fmt: skip
    """The key an engine built from ``onnx_path`` on ``system`` gets."""
    shapes = tuple(tuple((n, s) for n, s in profile_shapes(p, tile).items()) for p in profiles)
    return EngineKey(system, precision, flavour, shapes, sha256_file(onnx_path), version_compatible)


def _parse(trt: Any, network: Any, logger: Any, onnx_path: Path, dla: bool) -> None:
    parser = trt.OnnxParser(network, logger)
    if dla and hasattr(trt.OnnxParserFlag, "ADJUST_FOR_DLA"):
        parser.set_flag(trt.OnnxParserFlag.ADJUST_FOR_DLA)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse the ONNX: {errors}", onnx_path)


def _configure(
    trt: Any, builder: Any, config: Any, options: EngineBuildOptions, profiles: list[BatchProfile], tile: int
) -> None:
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.optimization_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # the inspector's layer report needs it
    for profile in profiles:
        prof = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile_shapes(profile, tile).items():
            prof.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(prof)
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.fp16_flag:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise ExportError("BuilderFlag.FP16 does not exist in TensorRT 11; use the AutoCast FP16 ONNX")
        config.set_flag(trt.BuilderFlag.FP16)
    if options.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def _layer_report(trt: Any, plan: bytes, logger: Any, path: Path) -> tuple[int | None, int | None]:
    """Writes the engine inspector's layer JSON; returns (layers on DLA, layers total)."""
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    inspector = engine.create_engine_inspector()
    text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    atomic_write(path, lambda tmp: tmp.write_text(text))
    layers = json.loads(text).get("Layers", [])
    if not layers or not isinstance(layers[0], dict):
        return None, len(layers) or None
    on_dla = sum(1 for layer in layers if "dla" in json.dumps(layer).lower())
    return on_dla, len(layers)


def build_engine(
    onnx_path: str | Path,
    out_dir: str | Path,
    tile: int,
    precision: str,
    flavour: str = "standard",
    options: EngineBuildOptions = EngineBuildOptions(),
    plugin_ptx_dir: str | Path | None = None,
) -> EngineArtifact:
    """Builds (or reuses) an engine for the running system.

    Args:
        onnx_path: FP32 / FP16 / INT8 ONNX from the export.
        out_dir: Engine store; the engine goes to ``out_dir/<key digest>/``, the timing cache to
            ``out_dir/timing-<system digest>.cache``.
        tile: The ONNX's tile side.
        precision: ``fp32``, ``fp16`` or ``int8`` (recorded in the key; the graph decides).
        flavour: ``standard`` or ``plugin`` (then ``plugin_ptx_dir`` is required).
        options: Build options.
        plugin_ptx_dir: Plugin PTX folder from the export.

    Returns:
        The engine artifact (an existing engine with the same key is reused: a re-run skips work).

    Raises:
        ExportError: TensorRT missing, parse or build failure, DFT on TensorRT < 11.2, plugins
            on TensorRT < 10.8.
    """
    import onnx

    onnx_path, store = Path(onnx_path), Path(out_dir)
    if not onnx_path.is_file():
        raise ExportError("no such ONNX in the export (was this precision exported?)", onnx_path)
    trt = _import_tensorrt()
    system = probe_system()
    has_dft = any(n.op_type == "DFT" for n in onnx.load(str(onnx_path), load_external_data=False).graph.node)
    log.info("spectral term builds as %s on TensorRT %s", spectral_choice(system.tensorrt, has_dft), system.tensorrt)
    profiles = derive_profiles(options.modes, options.batch, options.max_batch)
    key = engine_key_for(system, onnx_path, precision, flavour, profiles, tile, options.version_compatible)
    directory = store / key.digest()
    engine_path = directory / ENGINE_FILE
    if engine_path.is_file() and (directory / KEY_FILE).is_file():
        try:
            verify_engine(engine_path)
        except ExportError as exc:
            log.warning("rebuilding: the existing engine does not verify (%s)", exc)
        else:
            log.info("engine %s exists; reusing it", engine_path)
            return EngineArtifact(directory, engine_path, key, 0.0, None, None)
    if flavour == "plugin":
        if plugin_ptx_dir is None:
            raise ExportError("the plugin flavour needs the export's plugin PTX folder", onnx_path)
        from cloudlulc_edge.export.trt_plugins import capability_arch, register_plugins

        register_plugins(str(plugin_ptx_dir), capability_arch(system.compute_capability))
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    _parse(trt, network, logger, onnx_path, options.dla_core is not None)
    config = builder.create_builder_config()
    _configure(trt, builder, config, options, profiles, tile)
    store.mkdir(parents=True, exist_ok=True)
    cache_path = store / f"timing-{system.digest()}.cache"
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    build_s = time.perf_counter() - start
    if plan is None:
        raise ExportError("TensorRT failed to build the engine (see the TensorRT log above)", onnx_path)
    directory.mkdir(parents=True, exist_ok=True)
    data = bytes(plan)
    atomic_write(cache_path, lambda tmp: tmp.write_bytes(bytes(cache.serialize())))
    on_dla, total = _layer_report(trt, data, logger, directory / LAYERS_FILE)
    atomic_write(engine_path, lambda tmp: tmp.write_bytes(data))
    manifest = {"engine": engine_path.name, "sha256": sha256_file(engine_path), "bytes": len(data)}
    atomic_write(directory / ENGINE_MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1) + "\n"))
    # The key is written last: an engine without its key is never loaded.
    atomic_write(directory / KEY_FILE, lambda tmp: tmp.write_text(json.dumps(key.to_dict(), indent=1) + "\n"))
    return EngineArtifact(directory, engine_path, key, build_s, on_dla if options.dla_core is not None else None, total)


def read_engine_key(engine_path: Path) -> EngineKey:
    """Reads the key stored beside an engine.

    Raises:
        ExportError: No key (such an engine is never loaded) or a malformed one.
    """
    key_path = engine_path.parent / KEY_FILE
    if not key_path.is_file():
        raise ExportError("engine has no key.json beside it; refusing to load an unidentified plan", engine_path)
    try:
        return EngineKey.from_dict(json.loads(key_path.read_text()))
    except json.JSONDecodeError as exc:
        raise ExportError(f"engine key is not valid JSON: {exc}", key_path) from exc


def verify_engine(engine_path: Path) -> EngineKey:
    """Checks an engine file against its build-time manifest and returns its key.

    Raises:
        ExportError: No key or no manifest beside the engine, or the engine's SHA-256 or size differs
            from the manifest (a tampered, truncated or foreign plan).
    """
    key = read_engine_key(engine_path)
    manifest_path = engine_path.parent / ENGINE_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        expected, size = str(manifest["sha256"]), int(manifest["bytes"])
    except FileNotFoundError as exc:
        raise ExportError(f"engine has no {ENGINE_MANIFEST} (build-time SHA-256) beside it; refusing to load it",
                          engine_path) from exc  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"engine manifest is malformed ({exc!r})", manifest_path) from exc
    if not engine_path.is_file() or engine_path.stat().st_size != size or sha256_file(engine_path) != expected:
        raise ExportError("engine bytes differ from the SHA-256 recorded when it was built; refusing to load a "
                          "tampered or foreign plan", engine_path)  # fmt: skip
    return key


def load_engine(engine_path: str | Path, onnx_sha256: str | None = None) -> tuple[Any, EngineKey]:
    """Deserializes an engine after checking its key against the running system.

    Args:
        engine_path: ``…/model.engine``.
        onnx_sha256: Expected ONNX hash (None: not checked).

    Returns:
        ``(ICudaEngine, key)``.

    Raises:
        ExportError: No key or manifest beside the engine, bytes that differ from the build-time
            SHA-256, or deserialization fails.
        EngineCompatibilityError: The key does not match this system.
    """
    engine_path = Path(engine_path)
    key = verify_engine(engine_path)  # before TensorRT is even imported: never deserialize untrusted bytes
    trt = _import_tensorrt()
    check_engine_key(key, probe_system(), onnx_sha256, engine_path)
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    if key.version_compatible:
        runtime.engine_host_code_allowed = True  # the embedded lean runtime is host code
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise ExportError("TensorRT could not deserialize the engine", engine_path)
    return engine, key


def build_engine_from_export(
    export_dir: str | Path,
    precision: str = "fp16",
    flavour: str = "standard",
    options: EngineBuildOptions = EngineBuildOptions(),
    engines_dir: str | Path | None = None,
) -> EngineArtifact:
    """Builds (or reuses) the engine of one graph of an export directory for this machine.

    The export's manifest is read and verified first (`bundle.read_manifest`); the graph is
    ``model_<precision>.onnx`` (standard) or ``model_plugin_fp32.onnx`` (plugin, with its PTX).

    Args:
        export_dir: Directory written by ``export onnx``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        flavour: ``standard`` or ``plugin``.
        options: Build options.
        engines_dir: Engine store (default ``export_dir/engines``).

    Raises:
        ExportError: A bad export, no TensorRT, or a failed build.
    """
    from cloudlulc_edge.export.bundle import read_manifest

    folder = Path(export_dir)
    manifest = read_manifest(folder)
    name = "model_plugin_fp32.onnx" if flavour == "plugin" else f"model_{precision}.onnx"
    return build_engine(folder / name, engines_dir or folder / "engines", int(manifest["tile"]), precision, flavour,
                        options, folder / "plugins")  # fmt: skip


def check_engine_here(engine_path: str | Path) -> EngineKey:
    """An engine's key, checked against this machine (TensorRT, CUDA, GPU, JetPack).

    Raises:
        ExportError: No key beside the engine.
        EngineCompatibilityError: The engine was built for another system (the message says what differs).
    """
    from cloudlulc_edge.export.engine_key import check_engine_key, probe_system

    path = Path(engine_path)
    key = read_engine_key(path)
    check_engine_key(key, probe_system(), None, path)
    return key
