"""The package's layers: imports only point down, no module imports itself round a circle, profiles stay in one place.

Read from the source with `ast`, so a lazy import inside a function counts as
much as one at the top. Imports under `if TYPE_CHECKING:` are type hints, not
run-time imports: they must respect the layers but may close a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conformance import profiles

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "conformance"

LAYERS = ("crypto", "core", "flows", "checking", "mock", "mock.systems", "profiles", "runner")
"""Bottom to top: a module may import its own layer and the layers before it, never one after it."""


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
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported conformance module, only for type checking) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_lines(tree)
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                targets.append(candidate if candidate in known else node.module)
        for target in targets:
            if (
                target == "conformance"
                or target.startswith("conformance.")
                or target.split(".")[0]
                in (
                    "suites",
                    "tests",
                )
            ):
                found.append((target, getattr(node, "lineno", 0) in typing_only))
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def test_every_module_sits_in_a_layer() -> None:
    outside = [m for m in MODULES if m != "conformance" and layer_of(m) is None]
    assert not outside, f"modules outside the layers {LAYERS}: {outside}"


def test_imports_only_point_down() -> None:
    upward = []
    for module, imports in GRAPH.items():
        own = layer_of(module)
        for target, _ in imports:
            if target.split(".")[0] in ("suites", "tests"):
                if not module.startswith("conformance.runner"):
                    upward.append(f"{module} -> {target}")
                continue
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{module} ({LAYERS[own]}) -> {target} ({LAYERS[theirs]})")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    runtime = {m: {t for t, typing_only in imports if not typing_only and t in MODULES} for m, imports in GRAPH.items()}
    circles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(runtime[module]):
            if state.get(target) == 1:
                circles.append([*trail[trail.index(target) :], target] if target in trail else [module, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(runtime):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_checker_sees_a_violation() -> None:
    """The layer rule itself can fail: an upward import is recognised as one."""
    assert layer_of("conformance.crypto.jose") < layer_of("conformance.runner.cli")  # type: ignore[operator]
    assert layer_of("conformance.mock.systems.udap") == LAYERS.index("mock.systems")
    assert layer_of("conformance.mock.store") == LAYERS.index("mock")


PROFILE_OWNED = ("conformance/profiles/", "conformance/mock/systems/")


def profile_name_uses(source: str) -> list[str]:
    """String literals naming a profile where code decides by profile: comparisons, defaults, keyword values,
    and tables or tuples of several profile names. (A protocol member that happens to be called "udap" is not
    a use.)"""
    known = {n for p in profiles.PROFILES for n in p.names}

    def named(node: ast.AST | None) -> str | None:
        return node.value if isinstance(node, ast.Constant) and node.value in known else None

    def several(nodes: list[ast.expr | None]) -> list[str]:
        found = [n for n in map(named, nodes) if n]
        return found if len(found) >= 2 else []

    hits: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                hits += [n for n in [named(side)] if n]
                if isinstance(side, ast.Tuple | ast.List | ast.Set):
                    hits += [n for n in map(named, side.elts) if n]
        elif isinstance(node, ast.arguments):
            hits += [n for n in map(named, [*node.defaults, *node.kw_defaults]) if n]
        elif isinstance(node, ast.keyword):
            hits += [n for n in [named(node.value)] if n]
        elif isinstance(node, ast.Dict):
            hits += several(list(node.keys))
        elif isinstance(node, ast.Tuple | ast.List):
            hits += several(list(node.elts))
    return hits


def test_the_profile_name_finder_finds_decisions_by_name() -> None:
    assert profile_name_uses('if cfg.profile == "udap": pass') == ["udap"]
    assert profile_name_uses('def f(profile="ccde"): pass') == ["ccde"]
    assert profile_name_uses('ROUTES = {"udap": 1, "ccde": 2}') == ["udap", "ccde"]
    assert profile_name_uses('body = {"udap": "1", "certifications": []}') == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outside_the_profiles_decides_by_profile_name(path: Path) -> None:
    """Everything outside a profile's own files asks the registry (conformance.profiles) instead."""
    relative = path.relative_to(ROOT).as_posix()
    if relative.startswith(PROFILE_OWNED):
        return
    hits = profile_name_uses(path.read_text(encoding="utf-8"))
    assert not hits, f"{relative} decides by profile name(s) {sorted(set(hits))}; ask conformance.profiles instead"
