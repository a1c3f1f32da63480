"""Plugin PTX per node signature and GPU target, compiled without a GPU (needs triton)."""

from __future__ import annotations

import re

import onnx
import pytest

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export.plugin_ops import PLUGIN_OPS
from cloudlulc_edge.export.plugin_ptx import load_plugin_index, plugin_builds, write_plugin_ptx
from tests.export.conftest import TILE

pytest.importorskip("triton", reason="plugin PTX needs triton (the 'kernels' extra)")
aot = pytest.importorskip("cloudlulc_edge.kernels.aot")

pytestmark = pytest.mark.export


def test_builds_are_the_distinct_node_signatures(edge_onnx):
    builds = plugin_builds(onnx.load(str(edge_onnx["plugin"])))
    keys = [b.key() for b in builds]
    assert len(keys) == len(set(keys))
    grid = TILE // 4  # fusion grid of the model
    by_plugin = {b.plugin: b for b in builds}
    # The edge profile's CHOI gates per pixel (local descriptor): the per-pixel plugin.
    assert set(by_plugin) == {"reliability_gate_masked", "norm_gate", "channel_softmax_gate_pixel"}
    assert (by_plugin["reliability_gate_masked"].channels, by_plugin["norm_gate"].channels) == (32, 16)
    assert by_plugin["channel_softmax_gate_pixel"].channels == 64 and by_plugin["norm_gate"].height == grid
    assert dict(by_plugin["norm_gate"].attrs)["eps"] == pytest.approx(1e-5)


def test_ptx_per_target_takes_exactly_the_node_tensors(edge_onnx, tmp_path):
    targets = aot.known_targets()
    assert {"sm_87", "sm_90a"} <= {t.name for t in targets}
    index = write_plugin_ptx(edge_onnx["plugin"], tmp_path, targets)
    table = load_plugin_index(index.parent)
    assert len(table) == 3 * len(targets)
    for (key, arch), (record, ptx) in table.items():
        assert re.search(rf"^\.target\s+{arch}\b", ptx, re.MULTILINE), (key, arch)
        assert re.search(rf"\.entry\s+{record.kernel_name}\(", ptx)
        op = PLUGIN_OPS[record.build.plugin]
        params = re.findall(r"\.param \.(\w+) \S+", ptx.split(".entry", 1)[1].split(")", 1)[0])
        # The node's tensors come first as pointers; every scalar is baked in. Triton may append its
        # own scratch pointers after them (unused: no global scratch is allocated).
        assert params[: len(op.inputs) + len(op.outputs)] == ["u64"] * (len(op.inputs) + len(op.outputs))
        assert all(p == "u64" for p in params)
        assert record.num_warps * 32 <= 1024 and record.shared_bytes <= 48 * 1024
        assert record.programs_per_image >= 1
        assert not re.search(r"\b(ld|st)\.local\b", ptx), f"{key} spills on {arch}"


def test_tampered_ptx_is_refused(edge_onnx, tmp_path):
    arch = aot.known_targets()[0]
    write_plugin_ptx(edge_onnx["plugin"], tmp_path, (arch,))
    ptx = next(tmp_path.glob("norm_gate*.ptx"))
    ptx.write_text(ptx.read_text().replace("ret;", "trap;", 1))
    with pytest.raises(ExportError, match="does not match its hash"):
        load_plugin_index(tmp_path)


def test_standard_graph_has_no_plugins(edge_onnx, tmp_path):
    with pytest.raises(ExportError, match="no cloudlulc plugin nodes"):
        write_plugin_ptx(edge_onnx["standard"], tmp_path, aot.known_targets())
