"""The package's layers: imports only point down, no module imports itself round a circle, profiles stay in one place.

Read from the source with `ast`: absolute, relative, lazy (inside a function)
and dynamic (`importlib.import_module("conformance.…")`) imports all count, and
importing a module imports its parent packages first. Imports under
`if TYPE_CHECKING:` are type hints, not run-time imports: they must respect the
layers but may close a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

from conformance.profiles import registry as profiles

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "conformance"

LAYERS = ("crypto", "core", "flows", "checking", "mock", "mock.systems", "profiles", "runner")
"""Bottom to top: a module may import its own layer and the layers before it, never one after it."""

Graph = Mapping[str, list[tuple[str, bool]]]
"""module -> [(imported module, only for type checking)]"""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    """The layer index of a conformance module (None for the package root, which holds only the version)."""
    inner = module.removeprefix("conformance").removeprefix(".")
    best = None
    for index, layer in enumerate(LAYERS):
        if inner == layer or inner.startswith(layer + "."):
            best = index  # the longest match wins: mock.systems over mock
    return best


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        plain = isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
        dotted = isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        if isinstance(node, ast.If) and (plain or dotted):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name a relative import (`from ..x import y`) refers to."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, target] if target else base)


def imports_of(path: Path, known: set[str], module: str | None = None) -> list[tuple[str, bool]]:
    """(imported module, only for type checking) for every import of our own modules in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_lines(tree)
    module, is_package = module or module_name(path), path.name == "__init__.py"
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node.level, node.module) if node.level else (node.module or "")
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                targets.append(candidate if candidate in known else source)
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                targets = [first.value]
            elif isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
                prefix = str(first.values[0].value)
                targets = [prefix.rstrip(".")] if prefix.startswith("conformance") else []
        for target in targets:
            if target.split(".")[0] in ("conformance", "suites", "tests"):
                found.append((target, getattr(node, "lineno", 0) in typing_only))
    return found


def build_graph() -> dict[str, list[tuple[str, bool]]]:
    paths = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    known = set(paths)
    graph = {name: imports_of(path, known) for name, path in paths.items()}
    for name in graph:  # importing a.b.c first runs a.b's __init__
        parent = name.rpartition(".")[0]
        if parent in graph and parent != "conformance":
            graph[name].append((parent, False))
    return graph


def upward_imports(graph: Graph) -> list[str]:
    upward = []
    for module, imports in graph.items():
        own = layer_of(module)
        for target, _ in imports:
            if target.split(".")[0] in ("suites", "tests"):
                if not module.startswith("conformance.runner"):
                    upward.append(f"{module} -> {target}")
                continue
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{module} ({LAYERS[own]}) -> {target} ({LAYERS[theirs]})")
    return upward


def import_circles(graph: Graph) -> list[list[str]]:
    runtime = {
        m: sorted({t for t, typing_only in imports if not typing_only and t in graph}) for m, imports in graph.items()
    }
    circles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in runtime[module]:
            if state.get(target) == 1:
                circles.append([*trail[trail.index(target) :], target] if target in trail else [module, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(runtime):
        if module not in state:
            visit(module, [module])
    return circles


GRAPH = build_graph()


def test_every_module_sits_in_a_layer() -> None:
    outside = [m for m in GRAPH if m != "conformance" and layer_of(m) is None]
    assert not outside, f"modules outside the layers {LAYERS}: {outside}"


def test_imports_only_point_down() -> None:
    upward = upward_imports(GRAPH)
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    circles = import_circles(GRAPH)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_checks_see_violations_in_a_planted_graph(tmp_path: Path) -> None:
    """Upward arrows, circles, relative and dynamic imports are all recognised."""
    planted = tmp_path / "conformance" / "crypto" / "jose.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(
        "from ..runner import cli\nimport importlib\nimportlib.import_module('conformance.profiles.registry')\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from conformance.core import config\n"
    )
    known = {"conformance.runner.cli", "conformance.core.config"}
    found = imports_of(planted, known, module="conformance.crypto.jose")
    assert ("conformance.runner.cli", False) in found, found
    assert ("conformance.profiles.registry", False) in found
    assert ("conformance.core.config", True) in found
    graph: Graph = {
        "conformance.crypto.jose": [("conformance.runner.cli", False)],
        "conformance.runner.cli": [("conformance.crypto.jose", False)],
        "conformance.core.config": [("conformance.core.recording", True)],
        "conformance.core.recording": [("conformance.core.config", False)],
    }
    assert upward_imports(graph) == ["conformance.crypto.jose (crypto) -> conformance.runner.cli (runner)"]
    assert import_circles(graph) == [["conformance.crypto.jose", "conformance.runner.cli", "conformance.crypto.jose"]]


PROFILE_OWNED = ("conformance/profiles/", "conformance/mock/systems/")
PROTOCOL_MEMBERS = {("conformance/flows/udap.py", "udap")}
"""Literals that are protocol members and happen to equal a profile name (the UDAP registration body's `udap`)."""


def profile_name_literals(source: str) -> list[str]:
    """Every string literal that equals a profile name or alias (docstrings and f-string text aside)."""
    known = {n for p in profiles.PROFILES for n in p.names}
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in known and id(node) not in docstrings
    ]


def test_the_profile_name_finder_finds_names_anywhere() -> None:
    assert profile_name_literals('if cfg.profile == "udap": pass') == ["udap"]
    assert profile_name_literals('def f(profile="ccde"): pass') == ["ccde"]
    assert profile_name_literals('profiles.get("client-secret")') == ["client-secret"]
    assert profile_name_literals('x = {"cerner-system-account": 1}') == ["cerner-system-account"]
    assert profile_name_literals('"""udap"""\nx = "the udap profile"') == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outside_the_profiles_names_a_profile(path: Path) -> None:
    """Everything outside a profile's own files asks the registry (conformance.profiles.registry) instead."""
    relative = path.relative_to(ROOT).as_posix()
    if relative.startswith(PROFILE_OWNED):
        return
    hits = [n for n in profile_name_literals(path.read_text(encoding="utf-8")) if (relative, n) not in PROTOCOL_MEMBERS]
    assert not hits, f"{relative} names profile(s) {sorted(set(hits))}; ask conformance.profiles.registry instead"
