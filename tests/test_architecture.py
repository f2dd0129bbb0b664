"""The layering of design.md, read from the source: data flows one way
(models → rewards → envs → rl → eval → relabel → cli; distributed serves rl), and no module imports itself
back through others.
Function-level imports count: a lazy import still ties two modules together."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "vlmreward"

FORBIDDEN = {  # layer -> layers above it that it must not import
    "models": {"rewards", "envs", "rl", "eval", "cli", "distributed"},
    "rewards": {"envs", "rl", "eval", "cli", "distributed"},
    "envs": {"rl", "eval", "cli", "distributed"},
    "rl": {"eval", "relabel", "cli"},
    "eval": {"relabel", "cli"},
    "relabel": {"cli"},
    "distributed": {"rl", "eval", "cli"},
}


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(("vlmreward", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vlmreward"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("vlmreward")}
        graph[name] = deps
    return graph


def test_lower_layers_import_no_higher_layer():
    problems = []
    for module, deps in _imports().items():
        layer = module.split(".")[1] if module.count(".") >= 2 else None
        for dep in deps:
            target = dep.split(".")[1] if dep.count(".") >= 1 else None
            if layer in FORBIDDEN and target in FORBIDDEN[layer]:
                problems.append(f"{module} imports {dep}")
    assert not problems, problems


def test_no_import_cycles_between_modules():
    graph = _imports()

    def reachable(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for dep in graph.get(stack.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return seen

    # a package imports its own modules in __init__: count cycles between modules, not into a package's __init__
    cycles = sorted({
        tuple(sorted((a, b))) for a, deps in graph.items() for b in deps
        if b in graph and a != b and not a.startswith(b + ".") and not b.startswith(a + ".") and a in reachable(b)
    })
    assert not cycles, cycles


def test_modules_over_450_lines_state_why():
    """design.md: one concept family per file; a module past ~450 lines says why it stays whole."""
    long = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if len(path.read_text(encoding="utf-8").splitlines()) > 450
        and "Why one module:" not in (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "")
    ]
    assert not long, long
