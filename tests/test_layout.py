"""The package's shape stays readable: modules, functions and signatures within the sizes issue 25 set,
and no import cycle among the package's modules."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "lenet"
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_PARAMETERS = 400, 60, 8


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Its parameters, not counting self or cls; *args and **kwargs one each."""
    a = node.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
    return len(names) + (a.vararg is not None) + (a.kwarg is not None)


def test_the_rules_see_the_package():
    assert len(modules()) > 50  # a wrong path would pass every check below


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path):
    source = path.read_text(encoding="utf-8")
    problems = []
    if source.count("\n") > MAX_MODULE_LINES:
        problems.append(f"{source.count(chr(10))} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                problems.append(f"{node.name} (line {node.lineno}): {lines} lines (at most {MAX_FUNCTION_LINES})")
            if parameters(node) > MAX_PARAMETERS:
                problems.append(f"{node.name} (line {node.lineno}): {parameters(node)} parameters "
                                f"(at most {MAX_PARAMETERS})")
    assert not problems, f"{path.relative_to(PACKAGE)}: " + "; ".join(problems)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_at_load(path: Path, known: set[str]) -> set[str]:
    """The package's modules `path` imports when it is loaded: top-level imports only (a function's
    own import runs when called, which is how a module defers torch), TYPE_CHECKING blocks left out."""
    found = set()
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up for each dot past the first
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found.update(n for n in names if n in known and n != here)
    return found


def test_no_import_cycle_when_modules_load():
    known = {module_name(p) for p in modules()}
    graph = {module_name(p): imports_at_load(p, known) for p in modules()}
    # A package's __init__ importing its own modules is how a package is put together, not a cycle.
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name):], name]))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
