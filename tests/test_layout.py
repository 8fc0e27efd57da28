"""The project's layout, checked against its import graph.

Every import counts, those under `if TYPE_CHECKING:` and inside functions
included: a circle closed only for the type checker is still a circle for
the reader. The rules are those of `node/__init__.py`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sequencer", "storage", "consensus", "net", "node")
MODULE_LINES_MAX = 500
# A longer module says why in its opening docstring, with this phrase.
ONE_PIECE = "one piece"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


MODULES = _modules()


def _imported(name: str, path: Path) -> Iterator[str]:
    """The project modules `name` imports (a `from package import module` counts
    as the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            if target in MODULES and target != name:
                yield target


GRAPH = {name: set(_imported(name, path)) for name, path in MODULES.items()}


def _room(name: str) -> str:
    """`node.daemon.runtime` -> `node.daemon`; `node.cli` -> `node.cli`."""
    return ".".join(name.split(".")[:2])


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            vertex, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[vertex] = min(low[vertex], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[vertex])
                if low[vertex] == index[vertex]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == vertex:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_imports_under_type_checking() -> None:
    assert "consensus.host" in GRAPH["node.daemon.consensus"]
    assert len(MODULES) > 100


def test_no_import_circles() -> None:
    assert _circles(GRAPH) == []


# Which rooms of `node` each room may import. `node.errors` and `node.logs`
# are for everyone; the packages outside `node` never import it.
ALLOWED = {
    # The config's tables take their defaults from the limits the API enforces.
    "node.config": {"node.config", "node.api"},
    "node.api": {"node.api"},
    "node.daemon": {"node.daemon", "node.api", "node.config"},
    "node.ops": {"node.ops", "node.config"},
    "node.lab": {"node.lab", "node.ops", "node.api", "node.config"},
    "node.cli": {"node.daemon", "node.api", "node.config", "node.ops", "node.lab"},
}
SHARED = {"node", "node.errors", "node.logs"}
# A room's package (its `__init__`) is its public surface: rooms that may not
# reach into the daemon may still use `node.daemon` itself.
PUBLIC = {"node.lab": {"node.daemon"}}


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_each_room_imports_only_what_it_may(room: str) -> None:
    wrong = {
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if _room(name) == room
        for target in targets
        if target.startswith("node.")
        and target not in SHARED
        and target not in PUBLIC.get(room, set())
        and _room(target) not in ALLOWED[room]
    }
    assert not wrong


def test_only_node_imports_node() -> None:
    wrong = {
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if not name.startswith("node")
        for target in targets
        if target.startswith("node")
    }
    assert not wrong


def test_every_node_module_is_in_a_room() -> None:
    loose = {
        name
        for name in MODULES
        if name.startswith("node.") and _room(name) not in ALLOWED and name not in SHARED
    }
    assert not loose


def test_no_module_is_long_without_saying_why() -> None:
    long = {}
    for name, path in MODULES.items():
        text = path.read_text()
        lines = text.count("\n")
        if lines <= MODULE_LINES_MAX:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if ONE_PIECE not in docstring.lower():
            long[name] = lines
    assert not long
