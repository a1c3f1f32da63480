"""The house rules of `architecture.md`, checked on the code: rooms, import directions, thin CLI, no import side effects."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Folder → import name of the package parts (the package-dir mapping).
FOLDERS = {"cloudlulc_edge": "cloudlulc_edge", "kernels": "cloudlulc_edge.kernels", "export": "cloudlulc_edge.export",
           "cli": "cloudlulc_edge.cli", "bench": "cloudlulc_edge.bench"}  # fmt: skip


def _modules() -> dict[str, Path]:
    """Import name → file of every library module (the links under cloudlulc_edge/ are skipped)."""
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder)
            if folder == "cloudlulc_edge" and rel.parts[0] in ("kernels", "export", "cli", "bench"):
                continue
            parts = [*package.split("."), *rel.with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path) -> set[str]:
    """Every cloudlulc_edge module a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cloudlulc_edge"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cloudlulc_edge")}
    return found


def _part(module: str) -> str:
    """The part of the data flow a module belongs to (architecture.md's package map)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "cloudlulc_edge"


#: part → parts it must never import (architecture.md, "Rules of the house").
FORBIDDEN = {
    "models": {"io", "pipeline", "backends", "export", "cli", "runner", "tiling", "pairing", "writer", "bench"},
    "io": {"models", "backends", "export", "pipeline", "cli", "runner", "training", "bench"},
    "kernels": {"models", "backends", "export", "cli", "pipeline", "io", "runner", "bench"},
    "export": {"pipeline", "runner", "cli", "backends", "ray_executor", "bench"},
    "backends": {"pipeline", "runner", "cli", "ray_executor", "bench"},
    "tiling": {"pipeline", "backends", "models", "export", "cli", "runner"},
    "pairing": {"pipeline", "backends", "models", "export", "cli", "runner"},
    "writer": {"pipeline", "backends", "models", "export", "cli", "runner"},
    "pipeline": {"runner", "cli", "export", "ray_executor", "bench"},
    "data": {"pipeline", "backends", "export", "cli", "runner"},
    "training": {"pipeline", "backends", "export", "cli", "runner"},
    "optics": {
        "io",
        "models",
        "pipeline",
        "backends",
        "export",
        "cli",
        "runner",
        "tiling",
        "pairing",
        "writer",
        "data",
        "training",
        "bench",
    },
}


def test_no_forbidden_import():
    offences = []
    for module, path in _modules().items():
        part = _part(module)
        banned = FORBIDDEN.get(part, set()) | ({"cli"} if part != "cli" else set())
        for imported in _imports(path):
            if _part(imported) in banned:
                offences.append(f"{module} imports {imported}")
    assert not offences, "\n".join(offences)


def test_parts_form_no_loop():
    graph: dict[str, set[str]] = {}
    for module, path in _modules().items():
        graph.setdefault(_part(module), set()).update(_part(m) for m in _imports(path) if _part(m) != _part(module))
    graph = {k: v - {"cloudlulc_edge", "errors", "files", "contract", "version"} for k, v in graph.items()}
    seen: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if seen.get(node) == 1:
            pytest.fail("loop between parts: " + " → ".join([*trail, node]))
        if seen.get(node) == 2:
            return
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*trail, node])
        seen[node] = 2

    for node in sorted(graph):
        visit(node, [])


def _library_calls(tree: ast.Module) -> dict[str, set[str]]:
    """CLI function → the library *functions* it calls (classes, enums and errors are not counted)."""
    library: set[str] = set()
    for node in ast.walk(tree):
        module = node.module if isinstance(node, ast.ImportFrom) else None
        if module and module.startswith("cloudlulc_edge") and not module.startswith("cloudlulc_edge.cli"):
            library |= {a.asname or a.name for a in node.names}
    calls = {}
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        used = {c.func.id for c in ast.walk(fn) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        calls[fn.name] = {
            name for name in used & library if name[0].islower() and not name.startswith(("render_", "parse_"))
        }
    return calls


def test_every_cli_function_makes_at_most_one_library_call():
    fat = []
    for path in sorted((ROOT / "cli").glob("*.py")):
        if path.name in ("options.py", "progress.py", "__init__.py"):  # shared parsing and printing helpers
            continue
        for function, called in _library_calls(ast.parse(path.read_text())).items():
            if len(called) > 1:
                fat.append(f"cli/{path.name}:{function} calls {sorted(called)}")
    assert not fat, "\n".join(fat)


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout


def test_help_imports_neither_torch_nor_gdal():
    out = _python(
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from cloudlulc_edge.cli import app\n"
        "for a in (['--help'], ['map', '--help'], ['run', '--help'], ['export', 'onnx', '--help'], ['demo', '--help']):\n"
        "    assert CliRunner().invoke(app, a).exit_code == 0, a\n"
        "print(json.dumps(sorted(m for m in ('torch', 'rasterio', 'onnxruntime', 'triton') if m in sys.modules)))\n"
    )
    assert json.loads(out) == []


def test_importing_the_library_changes_no_environment_variable():
    modules = sorted(m for m in _modules() if not m.startswith(("cloudlulc_edge.kernels.jit", "cloudlulc_edge.bench")))
    out = _python(
        "import importlib, json, os\n"
        "import numpy, rasterio, torch  # third-party packages may set their own (rasterio: *_CURL_CA_BUNDLE)\n"
        "before = dict(os.environ)\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        pass  # an optional extra (tensorrt, ray) that is not installed\n"
        "after = dict(os.environ)\n"
        "print(json.dumps(sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))))\n"
    )
    assert json.loads(out) == []
