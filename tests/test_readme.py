"""The README's set-up commands stay true: CI runs exactly the README's test command."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ".venv/bin/python -m pytest && " in ci_command
    assert ci_command.endswith("TRITON_INTERPRET=1 .venv/bin/python -m pytest -m interpret")
    assert ci_command in (ROOT / "README.md").read_text()


def test_readme_has_the_variant_table():
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- model-cost:start -->")[1].split("<!-- model-cost:end -->")[0]
    for name in ("cloudlulc_net", "cloudlulc_edge", "test_tiny"):
        assert f"| {name} |" in table
