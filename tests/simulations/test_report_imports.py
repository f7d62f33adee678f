"""Renderers live apart from measurement: none imports a benchmark driver."""

import ast
from pathlib import Path

import pytest

REPORTS = Path(__file__).resolve().parents[2] / "simulations" / "reports"
DRIVERS = ("fedrec.simulations.bench", "fedrec.simulations.attack")


def _imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


@pytest.mark.parametrize("path", sorted(REPORTS.glob("*.py")), ids=lambda p: p.name)
def test_a_renderer_imports_no_benchmark_driver(path: Path) -> None:
    drivers = {m for m in _imports(path) if m.startswith(DRIVERS)}
    assert not drivers, f"{path.name} imports {sorted(drivers)}"
