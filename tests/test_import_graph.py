"""The package's import graph, read from the source with `ast`: every
`import` / `from ... import` statement counts, at module level and inside
functions (a function-level import is still a dependency, only a later one).

- No import circle: the modules of `spacy_biobert` form a DAG.
- No private cross-package import: a module imports a `_`-prefixed module of
  a package only from inside that package (`cli/_app.py` is the CLI's own).

An edge goes to the module a statement names: `from ..corpora import io`
is an edge to `spacy_biobert.corpora.io` when that is a module, else to the
package `spacy_biobert.corpora` (its `__init__`). The implicit import of a
parent package's `__init__` is not an edge: a package `__init__` re-exports
its modules, so counting it would make every `from .pkg.mod import x` inside
the package a circle through the re-export, which Python resolves fine.
"""

import ast
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "spacy_biobert"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def all_modules() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def resolve(importer: str, is_package: bool, level: int, module: str) -> str:
    """The absolute name of a relative import in module `importer`."""
    if level == 0:
        return module
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """The package modules `name` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(name, is_package, node.level, node.module or "")
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                # `import a.b.c` names the module a.b.c (or its nearest module)
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    found.add(target)
    return found


def import_graph() -> Dict[str, Set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def package_of(module: str, modules: Dict[str, Path]) -> str:
    """The package a module belongs to (a package's `__init__` belongs to
    the package itself)."""
    if modules[module].name == "__init__.py":
        return module
    return module.rsplit(".", 1)[0]


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    # `annotate/window.py` imports `extensions` inside functions only
    assert "spacy_biobert.extensions" in graph["spacy_biobert.annotate.window"]
    assert "spacy_biobert.corpora.io" in graph["spacy_biobert.corpora.pubtator"]


def test_cycle_detection_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_circle():
    found = cycles(import_graph())
    assert not found, "import circles (module-level and function-level imports): " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_no_private_cross_package_import():
    modules = all_modules()
    bad = []
    for importer, targets in import_graph().items():
        for target in targets:
            private = [p for p in target.split(".") if p.startswith("_") and not p.endswith("__")]
            if not private:
                continue
            owner = package_of(target, modules)
            if not (importer == owner or importer.startswith(owner + ".")):
                bad.append(f"{importer} -> {target}")
    assert not bad, "private modules imported from outside their package: " + ", ".join(sorted(bad))
