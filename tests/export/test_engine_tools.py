"""Engine-side logic that runs without TensorRT: profiles, compatibility key and refusal, trtexec lines and logs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cloudlulc_edge.errors import EngineCompatibilityError, ExportError
from cloudlulc_edge.export.engine_builder import load_engine, read_engine_key, spectral_choice, verify_engine
from cloudlulc_edge.export.engine_key import EngineKey, SystemIdentity, check_engine_key, read_l4t_release
from cloudlulc_edge.export.profiles import BatchProfile, derive_profiles, profile_shapes
from cloudlulc_edge.export.trt_plugins import aot_plugins_supported, capability_arch
from cloudlulc_edge.export.trtexec import build_command, parse_summary, timing_command
from cloudlulc_edge.files import sha256_file

DATA = Path(__file__).parent / "data"
ORIN = SystemIdentity("10.3.0", "12.6", "Orin", "8.7", "36.4.3")
H100 = SystemIdentity("10.13.3", "13.0", "NVIDIA H100 80GB HBM3", "9.0")


def _key(system=H100, **kw):
    shapes = tuple(tuple(profile_shapes(p, 512).items()) for p in derive_profiles(("latency", "throughput")))
    return EngineKey(system, kw.pop("precision", "fp16"), "standard", shapes, kw.pop("sha", "ab" * 32), **kw)


def test_profiles_per_deployment_mode():
    latency, throughput = derive_profiles(("latency", "throughput"), batch=8, max_batch=16)
    assert (latency.min, latency.opt, latency.max) == (1, 1, 1)
    assert (throughput.min, throughput.opt, throughput.max) == (1, 8, 16)
    (dla,) = derive_profiles(("dla",), batch=4)
    assert dla.static and dla.min == 4
    shapes = profile_shapes(throughput, 512)
    assert shapes["s2"] == ((1, 12, 512, 512), (8, 12, 512, 512), (16, 12, 512, 512))
    assert shapes["s1_valid"][2] == (16, 1, 512, 512)
    with pytest.raises(ExportError, match="DLA"):
        derive_profiles(("dla", "latency"))
    with pytest.raises(ExportError, match="distinct"):
        derive_profiles(("latency", "latency"))
    with pytest.raises(ExportError, match="min"):
        BatchProfile("x", 4, 2, 8)


def test_key_round_trips_and_digest_is_stable():
    key = _key()
    again = EngineKey.from_dict(json.loads(json.dumps(key.to_dict())))
    assert again == key and again.digest() == key.digest()
    assert _key(precision="int8").digest() != key.digest()
    with pytest.raises(ExportError, match="malformed"):
        EngineKey.from_dict({"system": {}})


def test_mismatching_engines_are_refused_with_every_difference_named(tmp_path):
    engine = tmp_path / "model.engine"
    check_engine_key(_key(), H100, "ab" * 32, engine)  # same system: accepted
    with pytest.raises(EngineCompatibilityError) as err:
        check_engine_key(_key(), ORIN, "cd" * 32, engine)
    text = str(err.value)
    for field in ("tensorrt", "cuda", "gpu", "compute_capability", "l4t", "onnx_sha256"):
        assert field in text
    assert str(engine) in text and "Rebuild" in text


def test_version_compatible_engines_load_on_newer_same_major_only(tmp_path):
    key = _key(version_compatible=True)
    check_engine_key(key, replace(H100, tensorrt="10.16.1"), None, tmp_path)
    for other in ("10.8.0", "11.4.0"):
        with pytest.raises(EngineCompatibilityError, match="tensorrt"):
            check_engine_key(key, replace(H100, tensorrt=other), None, tmp_path)
    with pytest.raises(EngineCompatibilityError, match="tensorrt"):
        check_engine_key(_key(), replace(H100, tensorrt="10.16.1"), None, tmp_path)


def test_engine_without_key_is_never_loaded(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(ExportError, match=r"no key\.json"):
        read_engine_key(engine)
    (tmp_path / "key.json").write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        read_engine_key(engine)


def test_tampered_or_unmanifested_engines_are_refused_before_tensorrt_is_touched(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"serialized plan bytes")
    (tmp_path / "key.json").write_text(json.dumps(_key().to_dict()))
    with pytest.raises(ExportError, match=r"no engine\.json"):
        load_engine(engine)
    manifest = {"engine": engine.name, "sha256": sha256_file(engine), "bytes": engine.stat().st_size}
    (tmp_path / "engine.json").write_text(json.dumps(manifest))
    assert verify_engine(engine) == _key()
    engine.write_bytes(b"serialized plan bytez")  # same size, other bytes
    with pytest.raises(ExportError, match="differ from the SHA-256"):
        load_engine(engine)
    engine.write_bytes(b"short")
    with pytest.raises(ExportError, match="differ from the SHA-256"):
        verify_engine(engine)
    (tmp_path / "engine.json").write_text("{}")
    with pytest.raises(ExportError, match="malformed"):
        verify_engine(engine)


def test_l4t_release_is_read_from_nv_tegra_release(tmp_path):
    path = tmp_path / "nv_tegra_release"
    path.write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n")
    assert read_l4t_release(path) == "36.4.3"
    assert read_l4t_release(tmp_path / "absent") == ""


def test_spectral_choice_by_tensorrt_version():
    assert spectral_choice("10.3.0", graph_has_dft=False) == "matmul"
    assert spectral_choice("11.2.0", graph_has_dft=True) == "dft"
    with pytest.raises(ExportError, match="matmul"):
        spectral_choice("10.16.1", graph_has_dft=True)


def test_plugin_support_and_arch_names():
    assert not aot_plugins_supported("10.3.0") and aot_plugins_supported("10.8.0") and aot_plugins_supported("11.4.1")
    assert [capability_arch(c) for c in ("8.7", "9.0", "11.0")] == ["sm_87", "sm_90a", "sm_110a"]


def test_trtexec_build_lines_for_10x_11x_and_dla(tmp_path):
    profile = derive_profiles(("throughput",))[0]
    onnx, engine = tmp_path / "m.onnx", tmp_path / "m.engine"
    v10 = build_command(onnx, engine, profile, 512, trt_major=10, timing_cache=tmp_path / "t.cache")
    assert "--stronglyTyped" in v10 and f"--timingCacheFile={tmp_path / 't.cache'}" in v10
    assert "--optShapes=s2:8x12x512x512,s1:8x2x512x512,s2_valid:8x1x512x512,s1_valid:8x1x512x512" in v10
    assert "--memPoolSize=workspace:1024M" in v10
    v11 = build_command(onnx, engine, profile, 512, trt_major=11)
    assert "--stronglyTyped" not in v11
    for removed in ("--fp16", "--int8", "--best", "--calib"):
        assert not any(arg.startswith(removed) for arg in v10 + v11)
    dla = build_command(onnx, engine, derive_profiles(("dla",), batch=2)[0], 512, 10, dla_core=1, workspace_mib=512)
    assert "--useDLACore=1" in dla and "--allowGPUFallback" in dla
    assert "--minShapes=s2:2x12x512x512" in " ".join(dla) and "--maxShapes=s2:2x12x512x512" in " ".join(dla)
    run = timing_command(engine, 4, 512, duration_s=30)
    assert "--shapes=s2:4x12x512x512,s1:4x2x512x512,s2_valid:4x1x512x512,s1_valid:4x1x512x512" in run
    assert "--useCudaGraph" in run and "--duration=30" in run


def test_trtexec_summaries_parse():
    new = parse_summary((DATA / "trtexec_summary_2024.log").read_text())
    assert new.throughput_qps == 1099.65
    assert new.latency.median == 1.17322 and new.latency.percentiles == {90: 1.18164, 95: 1.18457, 99: 1.20386}
    assert new.gpu_compute.mean == 0.818735 and new.h2d is not None and new.h2d.mean == 0.219057
    assert new.d2h is not None and new.d2h.percentiles[99] == 0.15715
    assert new.host_walltime_s == 3.00186
    old = parse_summary((DATA / "trtexec_summary_2022.log").read_text())
    assert old.latency.mean == 42.2227 and old.latency.percentiles == {99: 43.2434}
    assert old.gpu_compute.min == 41.1855 and old.enqueue is not None
    with pytest.raises(ValueError, match="no trtexec performance summary"):
        parse_summary("[I] Engine built in 42.0 sec.\n&&&& PASSED TensorRT.trtexec")
