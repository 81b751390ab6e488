"""The layout rules of the code: imports point one way, no module imports itself round a loop, no
folder is too wide to read, and every room says what it owns.

Layers, bottom up: `errors/`, `storage/` → `connectors/`, `nlu/` → `knowledge_base/` → `bot/`. Inside `bot/`
the rooms have their own order (ROOM_ORDER). Every import counts, including those made only for
type checking or inside a function: each is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"errors": 0, "storage": 0, "connectors": 1, "nlu": 1, "knowledge_base": 2, "bot": 3}
# A room may import rooms of a lower rank, never one of its own rank or higher.
ROOM_ORDER = {
    "web": 0,
    "project": 0,
    "cluster": 0,
    "conversations": 1,
    "desk": 2,
    "dialogue": 3,
    "privacy": 4,
    "curation": 4,
    "training": 4,
    "simulation": 4,
    "reporting": 5,
    "server": 6,
    "evaluation": 7,
    "cli": 8,
}
MAX_MODULES_PER_FOLDER = 20


def modules() -> dict[str, Path]:
    """Dotted name (as installed, without `crowddesk.`) → file, for every module of the code."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The CrowdDesk modules `path` imports, resolved to the longest known module name."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if not name.startswith("crowddesk."):
                continue
            name = name.removeprefix("crowddesk.")
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                yield name


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        graph[name] |= {target for target in imports(path, known) if target != name}
    return graph


def room_of(module: str) -> tuple[str, str | None]:
    """(package, room inside `bot/` or None) of a module."""
    parts = module.split(".")
    room = parts[1] if parts[0] == "bot" and len(parts) > 1 and parts[1] in ROOM_ORDER else None
    return parts[0], room


def test_no_relative_imports() -> None:
    # Relative imports would slip past the checks below; the code uses absolute ones throughout.
    relative = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in modules().values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert relative == []


def test_lower_layers_never_import_higher_ones() -> None:
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        for target in targets
        if PACKAGES[target.split(".")[0]] > PACKAGES[source.split(".")[0]]
    )
    assert not upward, "\n".join(upward)


def test_bot_rooms_import_only_lower_rooms() -> None:
    wrong = []
    for source, targets in import_graph().items():
        package, room = room_of(source)
        if package != "bot":
            continue
        for target in targets:
            target_package, target_room = room_of(target)
            if target_package != "bot" or target_room == room:
                continue
            if room is None or target_room is None or ROOM_ORDER[target_room] >= ROOM_ORDER[room]:
                wrong.append(f"{source} -> {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles: list[list[str]] = []
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    assert not cycles, "\n".join(" <-> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_folder_is_too_wide(package: str) -> None:
    widths = {
        str(folder.relative_to(ROOT)): sum(1 for p in folder.glob("*.py") if p.name != "__init__.py")
        for folder in [ROOT / package, *(p for p in (ROOT / package).rglob("*") if p.is_dir())]
    }
    assert {folder: width for folder, width in widths.items() if width > MAX_MODULES_PER_FOLDER} == {}


def test_every_room_of_bot_is_listed_and_says_what_it_owns() -> None:
    rooms = {p.parent.name for p in (ROOT / "bot").glob("*/__init__.py")}
    assert rooms == set(ROOM_ORDER)
    for room in rooms:
        docstring = ast.get_docstring(ast.parse((ROOT / "bot" / room / "__init__.py").read_text(encoding="utf-8")))
        assert docstring and "import" in docstring, f"bot/{room}/__init__.py must say what it owns and may import"


def test_every_package_is_installed() -> None:
    """A package pyproject.toml doesn't list is left out of a built wheel (an editable install
    finds it anyway, so only this catches it)."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    packages = {
        "crowddesk." + ".".join(path.parent.relative_to(ROOT).parts)
        for package in PACKAGES
        for path in (ROOT / package).rglob("__init__.py")
        if "templates" not in path.parts  # project templates ship as package data
    }
    assert packages - listed == set()
