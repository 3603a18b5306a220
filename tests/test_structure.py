"""The package's shape: no import cycle (imports inside functions included), no function over 80
lines, ruff clean."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "cogviz"
MAX_LINES = 80


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """Every cogviz module ``path`` imports, at any depth of the file (functions included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("cogviz"):
                out.add(t)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PKG.rglob("*.py")}
    modules = set(files)
    graph = {m: _imports(p, m, modules) for m, p in files.items()}
    for m in graph:  # importing a.b.c runs a/__init__ and a/b/__init__ first: those are not edges of a's own
        graph[m] = {t for t in graph[m] if not m.startswith(t + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for t in sorted(graph.get(n, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (c := visit(t)):
                return c
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "cogviz.sampler" in graph["cogviz.ablations"]  # the graph sees real edges
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_sampler_knows_nothing_of_ablations_experiments_or_sweeps():
    graph = import_graph()
    below = set()
    todo = ["cogviz.sampler"]
    while todo:
        for t in graph[todo.pop()] - below:
            below.add(t)
            todo.append(t)
    assert not below & {"cogviz.ablations", "cogviz.experiment", "cogviz.sweep", "cogviz.widgets", "cogviz.metrics"}
    assert graph["cogviz.points"] <= {"cogviz.errors"} and graph["cogviz.family"] <= {"cogviz.errors"}


def long_functions(root: Path = PKG) -> list[str]:
    out = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_80_lines():
    assert long_functions() == []


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    r = subprocess.run([ruff, "check", "cogviz", "tests", "benchmarks", "notebooks"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_the_trainer_stays_out_of_the_runtime():
    graph = import_graph()
    users = sorted(m for m, deps in graph.items() if any(d.startswith("cogviz.trainer") for d in deps)
                   and not m.startswith("cogviz.trainer"))
    assert users == ["cogviz.cli"]  # only `cogviz train-toy` hands over to it
    assert not any(d.startswith("cogviz.trainer") for d in graph["cogviz.toy.components"])


#: rules with one home (issue 42): each pattern may appear only in the modules named; the trainer,
#: the toy's builders and the test pipelines build models, so they set these values
ONE_HOME = {
    r"sample_frames": {"family.py", "testing.py", "toy/components.py"},
    r"in_channels // 2": {"family.py"},
    r"start \* steps <=": {"points.py"},
    r"// p_t\b|//\s*\S*patch_size_t": {"family.py"},
    r'"model_offload", "sequential_offload"': {"presets.py"},
    r"\.(fps|frame_rate) = 8\b|fps: float = 8\.0": {"metrics.py"},
}


def test_each_rule_is_coded_in_one_home():
    import re

    for pattern, homes in ONE_HOME.items():
        found = set()
        for path in PKG.rglob("*.py"):
            rel = path.relative_to(PKG).as_posix()
            if rel.startswith("trainer/"):
                continue
            if any(re.search(pattern, line) for line in path.read_text().splitlines()):
                found.add(rel)
        assert found <= homes, f"{pattern!r} is coded in {sorted(found - homes)} besides {sorted(homes)}"


def test_one_module_installs_hooks_inside_the_transformer_and_ablations_are_split():
    """Issue 42: three processor swappers and a forward-hook helper became one registry
    (cogviz.hooks); ablations.py became a package with no file over 400 lines."""
    import re

    installers = {}
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        for call in ("set_processor(", "register_forward_hook(", ".processor = "):
            if call in text:
                installers.setdefault(call, set()).add(path.relative_to(PKG).as_posix())
    assert installers == {c: {"hooks.py"} for c in ("set_processor(", "register_forward_hook(", ".processor = ")}, \
        installers
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PKG / "ablations").glob("*.py")}
    assert not (PKG / "ablations.py").exists() and len(sizes) >= 5
    assert max(sizes.values()) <= 400, sizes
    assert not any(re.search(r"start \* steps|\.start \*|\* setup\.steps", (PKG / "ablations" / n).read_text())
                   for n in sizes), "a step window coded outside points.in_window"
