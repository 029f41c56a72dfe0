"""Imports point one way: cli → flows → tasks → (audiox_core | db); audiox_core knows neither Prefect nor the
database; inside audiox_core each sub-package imports only those below it, and no module imports itself
back through others (no circle)."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "audiox_core": {"prefect", "sqlalchemy", "alembic", "db", "tasks", "flows", "cli"},
    "db": {"prefect", "tasks", "flows", "cli", "audiox_core"},
    "tasks": {"flows", "cli"},
    "flows": {"cli"},
}

# audiox_core's floors, each importing only the ones it names (README, "Architecture"). The top-level modules
# (errors, validation, workspace, lifecycle, producer_text) are the foundation every floor stands on.
FOUNDATION = "foundation"
BELOW = {
    FOUNDATION: set(),
    "store": {FOUNDATION},
    "video": {FOUNDATION, "store"},
    "sound": {FOUNDATION, "store", "video"},
    "model": {FOUNDATION, "store"},
    "train": {FOUNDATION, "store", "video", "sound", "model"},
    "provenance": {FOUNDATION, "store", "video", "sound", "model"},
    "reel": {FOUNDATION, "store", "video", "sound", "model", "provenance"},
}


def imports(path: Path) -> Iterator[str]:
    """Every module name ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def imported_roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imports(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    files = list((ROOT / package).rglob("*.py"))
    assert files
    bad = {str(f.relative_to(ROOT)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files}
    assert {f: b for f, b in bad.items() if b} == {}


def core_modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "audiox_core").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def floor(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in BELOW) else FOUNDATION


def test_every_module_of_audiox_core_is_on_a_known_floor() -> None:
    packages = {p.name for p in (ROOT / "audiox_core").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(BELOW) - {FOUNDATION}


def test_each_floor_imports_only_the_floors_below_it() -> None:
    modules = core_modules()
    upward = {}
    for name, path in modules.items():
        here = floor(name)
        wrong = sorted({m for m in imports(path) if m in modules and floor(m) != here and floor(m) not in BELOW[here]})
        if wrong:
            upward[name] = wrong
    assert upward == {}


def test_no_module_imports_itself_back_through_others() -> None:
    modules = core_modules()
    graph = {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}
    circles = []
    for start in graph:  # depth-first from each module: a path that comes back to it is a circle
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.append(" → ".join([*trail, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert circles == []


def test_the_layer_checks_see_an_import_that_runs_back_up(tmp_path: Path) -> None:
    """The checks above would fail on a store module that imports the reel (the kind of import they exist for)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from audiox_core.reel.naming import reel_folder\n")
    assert "audiox_core.reel.naming" in set(imports(bad))
    assert floor("audiox_core.reel.naming") not in BELOW[floor("audiox_core.store.files")]
