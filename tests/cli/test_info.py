from __future__ import annotations

from cloudlulc_edge.cli import app
from typer.testing import CliRunner


def test_info_lists_variants_and_kernels():
    result = CliRunner().invoke(app, ["info", "--no-models"])
    assert result.exit_code == 0, result.output
    for text in ("cloudlulc_net", "cloudlulc_edge", "test_tiny", "norm_gate", "kernel mode", "onnxruntime", "tensorrt"):
        assert text in result.output


def test_no_arguments_shows_help():
    result = CliRunner().invoke(app, [])
    assert "info" in result.output
