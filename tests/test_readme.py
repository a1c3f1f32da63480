"""The README's set-up commands stay true: CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ".venv/bin/python -m pytest && " in ci_command
    assert ci_command.endswith("TRITON_INTERPRET=1 .venv/bin/python -m pytest -m interpret")
    assert ci_command in (ROOT / "README.md").read_text()


def test_the_models_page_has_the_variant_table():
    text = (ROOT / "docs" / "models.md").read_text()
    table = text.split("<!-- model-cost:start -->")[1].split("<!-- model-cost:end -->")[0]
    for name in ("cloudlulc_net", "cloudlulc_edge", "test_tiny"):
        assert f"| {name} |" in table


def test_the_two_commands_follow_the_introduction():
    text = (ROOT / "README.md").read_text()
    setup = text.index("## Set-up: the two commands")
    assert text.index("## ", text.index("\n") + 1) == setup  # the first section after the introduction
    assert "cloudlulc-edge demo" in text[setup:] and ".venv/bin/python -m pytest" in text[setup:]


def test_every_relative_link_of_the_readme_and_docs_resolves():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert not broken, "\n".join(broken)
