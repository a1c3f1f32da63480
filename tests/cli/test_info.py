from __future__ import annotations

from typer.testing import CliRunner

from cloudlulc_edge.cli import app


def test_info_lists_variants_and_kernels():
    result = CliRunner().invoke(app, ["info", "--no-models"])
    assert result.exit_code == 0, result.output
    for text in ("cloudlulc_net", "cloudlulc_edge", "test_tiny", "norm_gate", "kernel mode", "onnxruntime", "tensorrt"):
        assert text in result.output


def test_no_arguments_shows_help():
    result = CliRunner().invoke(app, [])
    assert "info" in result.output


def test_info_prints_a_model_card(tmp_path):
    from cloudlulc_edge.models import create_model
    from cloudlulc_edge.models.checkpoint import save_checkpoint

    ckpt = save_checkpoint(create_model("test_tiny"), tmp_path / "ckpt")
    result = CliRunner().invoke(app, ["info", "--no-models", "--checkpoint", str(ckpt)])
    assert result.exit_code == 0, result.output
    assert '"variant": "test_tiny"' in result.output and "weights_sha256" in result.output
    result = CliRunner().invoke(app, ["info", "--no-models", "--checkpoint", str(tmp_path / "nope")])
    assert result.exit_code == 2


def test_engine_check_refuses_engines_without_a_key(tmp_path):
    (tmp_path / "model.engine").write_bytes(b"plan")
    result = CliRunner().invoke(app, ["engine", "check", str(tmp_path / "model.engine")])
    assert result.exit_code == 2 and "no key.json" in result.output
