"""No import cycle anywhere in the project, counting every import: module-level and inside functions."""
import ast
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "labeling", "cnn", "analysis", "data")


def module_name(path, root):
    """`cnn/training/engine.py` -> `cnn.training.engine`; a package's __init__ is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node, name, is_package):
    """The dotted names an Import or ImportFrom node brings in (relative imports resolved against `name`)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = name if is_package else name.rpartition(".")[0]
    for _ in range(max(node.level - 1, 0)):
        base = base.rpartition(".")[0]
    prefix = ".".join(p for p in (base if node.level else "", node.module or "") if p)
    return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]


def import_graph(root):
    """{module: the project modules it imports anywhere in its body}, for every module of PACKAGES."""
    paths = {module_name(p, root): p for package in PACKAGES for p in (root / package).rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                is_package = path.name == "__init__.py"
                targets |= {t for t in imported(node, name, is_package) if t in paths and t != name}
        graph[name] = targets
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan's algorithm), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_project_has_no_import_cycle():
    graph = import_graph(REPO)
    assert len(graph) > 90 and graph["cnn.training.train"]  # the walk sees the project and its arrows
    assert cycles(graph) == []


def test_a_cycle_through_a_function_level_import_is_caught(tmp_path):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "cnn" / "evaluation" / "metrics.py", "a") as f:
        f.write("\n\ndef late():\n    from cnn.evaluation.reports import write_reports\n")
    assert any({"cnn.evaluation.metrics", "cnn.evaluation.reports"} <= set(c) for c in cycles(import_graph(tmp_path)))


def test_cycles_finds_exactly_the_loops():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
