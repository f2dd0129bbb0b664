"""The layering of design.md, read from the source: data flows one way
(models → config → rewards → envs → rl / eval → relabel → cli; distributed serves rl; rl and eval are
siblings), no module imports itself back through others, and no module outside ``rewards`` names
a built-in reward kind (what a kind is lives in the registry).
Function-level imports count: a lazy import still ties two modules together."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "vlmreward"

FORBIDDEN = {  # layer -> layers above it that it must not import
    "models": {"config", "rewards", "envs", "rl", "eval", "relabel", "cli", "distributed"},
    "config": {"rewards", "envs", "rl", "eval", "relabel", "cli", "distributed"},
    "rewards": {"envs", "rl", "eval", "relabel", "cli", "distributed"},
    "envs": {"rl", "eval", "relabel", "cli", "distributed"},
    "rl": {"eval", "relabel", "cli"},
    "eval": {"rl", "relabel", "cli"},
    "relabel": {"rl", "cli"},
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


def _builtin_kinds() -> dict[str, str]:
    """Every kind vlmreward provides → the module that defines it."""
    from vlmreward.rewards.registry import builtin_reward_kinds, reward_kind

    return {name: getattr(reward_kind(name).factory, "__module__", "") for name in builtin_reward_kinds()}


def test_no_module_outside_rewards_names_a_builtin_reward_kind():
    """Commands, evaluation and training learn what a kind takes from the registry (issue 24): no
    ``if kind == "goal_baseline"``, no built-in kind in a message or docstring. A kind's own module
    (one registered by entry point from above ``rewards``) may name it."""
    import re

    kinds = _builtin_kinds()
    assert {"goal_baseline", "softmax_threshold", "ground_truth", "vqa", "custom"} <= set(kinds)
    problems = []
    for path in SRC.rglob("*.py"):
        module = ".".join(("vlmreward", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        if module == "vlmreward.rewards" or module.startswith("vlmreward.rewards."):
            continue
        text = path.read_text(encoding="utf-8")
        others = {k for k, m in kinds.items() if m != module}
        for name in sorted(k for k in others if "_" in k):  # anywhere: code, strings, docstrings, comments
            for match in re.finditer(rf"\b{name}\b", text):
                problems.append(f"{path.relative_to(SRC)}:{text.count(chr(10), 0, match.start()) + 1}: {name}")
        single = {k for k in others if "_" not in k}  # plain words (vqa, custom): as a string of their own
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in single:
                problems.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}")
    assert not problems, problems
