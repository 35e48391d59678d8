"""core stays free of Streamlit, and torch loads only when inference runs (the dashboard starts without it)."""
from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO

CORE_MODULES = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts)
    for path in (REPO / "core").rglob("*.py") if path.name not in ("__main__.py",)
)


def _imported_names(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_core_module_imports_streamlit():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "core").rglob("*.py") if "streamlit" in _imported_names(p)]
    assert offenders == []


def test_importing_every_core_module_loads_neither_torch_nor_streamlit():
    assert "core.evaluation" in CORE_MODULES and "core.cli.infer" in CORE_MODULES
    code = (f"import importlib, sys\nfor name in {CORE_MODULES!r}:\n    importlib.import_module(name)\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'streamlit') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
