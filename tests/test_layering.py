"""The layers of ``server/``, checked from the source (an AST walk, nothing imported):

    workers ──► wsgi, asgi, web ──► websocket ──► protocol      (an arrow: may import)
    workers ──► http2 ──► protocol

- ``server.protocol`` (the HTTP/1.1 core) imports no app layer and no worker;
- ``server.wsgi``, ``server.asgi`` and ``server.web`` import nothing from
  ``server.workers`` and nothing from gunicorn: only the workers know gunicorn;
- no two sub-packages of ``server`` import each other, even through others.

Every import counts: at module level or inside a function, absolute or relative.
"""

import ast
from pathlib import Path

import pytest

import server

PACKAGE_DIR = Path(server.__file__).resolve().parent
APP_LAYERS = ("server.wsgi", "server.asgi", "server.web")
ABOVE_PROTOCOL = (*APP_LAYERS, "server.websocket", "server.workers", "server.http2")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``server.protocol`` for its __init__.py)."""
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


MODULES = source_modules()


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, imported name) of every import in ``source``, relative ones made absolute.

    ``from a import b`` gives ``a.b`` when that is a module of the package, else ``a``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # "." is the module's package, ".." its parent...
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else base))
    return list(dict.fromkeys(found))


def all_imports() -> list[tuple[str, int, str]]:
    """(importing module, line, imported name) over the whole package."""
    found = []
    for module, path in MODULES.items():
        is_package = path.name == "__init__.py"
        found += [(module, line, name) for line, name in imports_of(path.read_text(), module, is_package)]
    return found


IMPORTS = all_imports()


def within(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def offences(importers, forbidden) -> list[str]:
    return [f"{module} (line {line}) imports {name}"
            for module, line, name in IMPORTS
            if within(module, importers) and within(name, forbidden)]


def subpackage(name: str) -> str | None:
    """``server.asgi`` for ``server.asgi.scope``; ``server`` for the top-level modules."""
    parts = name.split(".")
    if parts[0] != "server":
        return None
    if len(parts) > 1 and (PACKAGE_DIR / parts[1]).is_dir():
        return "server." + parts[1]
    return "server"


def package_graph() -> dict[str, dict[str, str]]:
    """importing sub-package -> imported sub-package -> one import that makes the edge."""
    graph: dict[str, dict[str, str]] = {}
    for module, line, name in IMPORTS:
        source, target = subpackage(module), subpackage(name)
        graph.setdefault(source, {})
        if target is not None and target != source:
            graph[source].setdefault(target, f"{module} (line {line}) imports {name}")
    return graph


def find_cycle(graph: dict[str, dict[str, str]]) -> list[str] | None:
    """Some cycle of ``graph`` as [a, b, ..., a], or None (a depth-first search)."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for target in graph.get(node, {}):
            cycle = visit(target, path + [node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


# -- the walk itself ---------------------------------------------------------------


def test_the_walk_sees_every_subpackage_and_its_imports():
    for name in ("server.protocol", "server.wsgi", "server.asgi", "server.web", "server.websocket",
                 "server.workers"):
        assert name in MODULES and any(module == name or module.startswith(name + ".")
                                       for module, _, _ in IMPORTS), name


def test_relative_and_nested_imports_are_resolved():
    source = ("from . import parser\n"
              "from .errors import HttpError\n"
              "def late():\n"
              "    from ..workers import apps\n"
              "    import gunicorn.arbiter\n")
    assert imports_of(source, "server.protocol.server") == [
        (1, "server.protocol.parser"), (2, "server.protocol.errors"),
        (4, "server.workers.apps"), (5, "gunicorn.arbiter")]
    assert imports_of("from . import limits\n", "server.protocol", is_package=True) == [
        (1, "server.protocol.limits")]


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": ""}, "b": {}, "c": {"a": ""}}) is None


# -- the rules -----------------------------------------------------------------------


def test_protocol_imports_no_app_layer_nor_worker():
    bad = offences(["server.protocol"], ABOVE_PROTOCOL)
    assert not bad, "server.protocol must not depend on the layers above it:\n" + "\n".join(bad)


@pytest.mark.parametrize("layer", APP_LAYERS)
def test_app_layer_imports_no_worker(layer):
    bad = offences([layer], ["server.workers"])
    assert not bad, f"{layer} must not import server.workers (the workers import it):\n" + "\n".join(bad)


@pytest.mark.parametrize("layer", APP_LAYERS)
def test_app_layer_imports_no_gunicorn(layer):
    bad = offences([layer], ["gunicorn"])
    assert not bad, f"{layer} must not import gunicorn (only server.workers does):\n" + "\n".join(bad)


def test_http2_imports_only_the_protocol_core():
    """HTTP/2 is a second connection: it serves every app kind through the seam, knowing none."""
    bad = offences(["server.http2"], (*APP_LAYERS, "server.websocket", "server.workers", "gunicorn"))
    assert not bad, "server.http2 may import server.protocol only:\n" + "\n".join(bad)


def test_no_import_cycle_between_subpackages():
    graph = package_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between sub-packages: " + " -> ".join(cycle) + "\n" + "\n".join(
        graph[a][b] for a, b in zip(cycle, cycle[1:]))
