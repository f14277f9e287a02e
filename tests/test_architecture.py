"""The layout rules of docs/DESIGN.md, checked on the code as it stands: one-way package
dependencies, no import cycles, small modules and functions, and nothing outside a domain package
that assumes places (coordinates, km, New York, Foursquare)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "mining", "retrieval", "domains", "agent", "api", "prompts", "evaluation", "jobs", "cli")
# What each package may import besides itself (the design's one-way arrows; cli and jobs sit on top).
ALLOWED = {
    "core": set(),
    "prompts": set(),
    "mining": {"core"},
    "retrieval": {"core", "mining"},
    "domains": {"core", "mining", "retrieval"},
    "agent": {"core", "mining", "retrieval", "domains", "prompts"},
    "api": {"core", "retrieval", "agent", "prompts"},
    "evaluation": {"core", "mining", "retrieval", "domains", "agent", "prompts"},
    "jobs": {"core", "mining", "retrieval", "domains", "agent", "prompts"},
    "cli": set(PACKAGES) - {"cli"},
}
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 80
MAX_PARAMS = 8
SMALL_FUNCTIONS = ("agent", "retrieval", "api")


def _modules() -> Iterator[tuple[str, Path]]:
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


MODULES = dict(_modules())


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules of the project that ``path`` imports (``from a.b import c`` counts a.b.c when that is
    a module, else a.b)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if top_level_only and isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports are not run
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_packages_depend_one_way() -> None:
    wrong = []
    for module, path in MODULES.items():
        pkg = module.split(".")[0]
        for target in _imports(path, top_level_only=False):
            other = target.split(".")[0]
            if other != pkg and other not in ALLOWED[pkg]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the design's arrows:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = {m: _imports(p, top_level_only=True) - {m} for m, p in MODULES.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small(module: str) -> None:
    n = len(MODULES[module].read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{module}: {n} lines, over {MAX_MODULE_LINES}: split it"


def test_functions_are_small() -> None:
    big = []
    for module, path in MODULES.items():
        if module.split(".")[0] not in SMALL_FUNCTIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            a = node.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs] + [x for x in (a.vararg, a.kwarg) if x]
            n_params = len([p for p in params if p.arg not in ("self", "cls")])
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > MAX_FUNCTION_LINES or n_params > MAX_PARAMS:
                big.append(f"{module}.{node.name}: {lines} lines, {n_params} parameters")
    assert not big, "functions over the limits:\n" + "\n".join(big)


# Words that assume places. Outside domains/places they may appear only where the data model or the
# HTTP wire carries optional coordinates (items and events may have them; nothing requires them).
PLACE_WORDS = re.compile(r"\bkm\b|new york|haversine|landmark|foursquare|getnext|\bnyc\b", re.IGNORECASE)
COORDINATES_ALLOWED = {
    "core.columns",
    "core.models",
    "core.events_frame",
    "core.ingest.reading",
    "core.ingest.events_format",
    "core.ingest.writer",
    "mining.frame",
    "retrieval.catalog",
    "api.schemas",
    "api.routers.recommendations",
    "api.routers.items",
    "api.routers.chat",
}
# The composition roots name the data sets and formats they wire (the CLI's demo and eval, the
# domain registry), and evaluation speaks of the places data set it evaluates.
PLACE_WORDS_ALLOWED = ("domains.places", "cli", "evaluation", "core.settings", "core.ingest.formats")


def _code_without_docstrings(path: Path) -> str:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body[0] = ast.Pass()
    return ast.unparse(tree)


def test_nothing_outside_the_places_domain_assumes_places() -> None:
    found = []
    for module, path in MODULES.items():
        if module == "domains" or any(module == p or module.startswith(p + ".") for p in PLACE_WORDS_ALLOWED):
            continue  # the bare "domains" is the registry that lists the places formats
        code = _code_without_docstrings(path)
        for word in sorted({m.group(0).lower() for m in PLACE_WORDS.finditer(code)}):
            found.append(f"{module}: {word!r}")
        if module not in COORDINATES_ALLOWED and re.search(r"\b(lat|lon|latitude|longitude)\b", code):
            found.append(f"{module}: coordinates")
    assert not found, "place assumptions outside domains/places:\n" + "\n".join(found)
