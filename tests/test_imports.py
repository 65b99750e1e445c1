"""The import graph of hashkit/ has no circle, and the leaves import nothing of the package.

Every ``import`` statement counts, at module level or inside a function: a function-level
import that only dodges a circle still makes the two modules depend on each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "hashkit"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(mod: str, is_pkg: bool, level: int, target: str | None) -> str:
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def import_graph() -> dict[str, set[str]]:
    """module -> the hashkit modules it imports (explicit edges only, not parent packages)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = _resolve(mod, is_pkg, node.level, node.module)
                else:
                    base = node.module or ""
                # "from pkg import sub" imports the sub-module when there is one
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [base] + subs
            for t in targets:
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def test_the_graph_is_read():
    g = import_graph()
    assert "hashkit.kernels" in g["hashkit.search"]
    assert "hashkit.codes" in g["hashkit.kernels"]


def test_no_import_circle():
    cycles = _cycles(import_graph())
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("leaf", ["hashkit._validate", "hashkit._version", "hashkit._command"])
def test_leaves_import_nothing_of_hashkit(leaf):
    assert import_graph()[leaf] == set()


def test_kernels_never_import_models():
    g = import_graph()
    low = [m for m in g if m.startswith(("hashkit.kernels", "hashkit.codes", "hashkit.search", "hashkit.metrics"))]
    for m in low:
        bad = {t for t in g[m] if t.startswith(("hashkit.methods", "hashkit.nn", "hashkit.train", "hashkit.losses"))}
        assert not bad, f"{m} imports {bad}"
