"""The import graph of the source tree, read statically (every ``import``, also inside functions), and its layers.

``tests/test_architecture.py`` checks the contract on it; run as a script it draws the dependency picture and
writes the module index of docs/architecture.md (a test fails when either is out of date):

    python tests/import_graph.py

Layers, lowest first: a module may import its own layer and the ones below, never one above. Within the
application layer, serving, the in-process pipeline and the client stay apart: they share the answer
(``dfguard.answer``, at the bottom), and whatever uses two of them (the CLI, the demo) sits above. No module
imports itself back through others (``cycles``), inside a layer either.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MODULES_BEGIN, MODULES_END = "<!-- modules:begin -->", "<!-- modules:end -->"
# source folder → the package it installs as (setup.py's package_dir)
SOURCES = {"dfguard": "dfguard", "kernels": "dfguard.kernels", "train": "dfguard.train", "client": "dfguard.client",
           "benchmarks": "benchmarks"}
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dfguard.kernels", "dfguard.paths", "dfguard.errors", "dfguard.extras", "dfguard.config", "dfguard.appendfile",
     "dfguard.progress", "dfguard.answer"),
    ("dfguard.faces", "dfguard.video", "dfguard.image", "dfguard.calibration", "dfguard.scoring",
     "dfguard.onnx_export"),
    ("dfguard.inference", "dfguard.visualize", "dfguard.verdicts"),
    ("dfguard.serving", "dfguard.pipeline", "dfguard.client", "dfguard.explain", "dfguard.watch", "dfguard.review"),
    ("dfguard.train",),
    ("dfguard.cli", "dfguard", "benchmarks"),
)
APART = {"dfguard.serving": ("dfguard.pipeline", "dfguard.client"), "dfguard.pipeline": ("dfguard.serving",
         "dfguard.client"), "dfguard.client": ("dfguard.serving", "dfguard.pipeline"),
         "dfguard.explain": ("dfguard.serving",), "dfguard.watch": ("dfguard.serving", "dfguard.pipeline"),
         "dfguard.review": ("dfguard.serving", "dfguard.pipeline")}


def module_name(path: Path) -> str:
    """The dotted name a source file is imported as."""
    relative = path.relative_to(ROOT)
    parts = [SOURCES[relative.parts[0]], *relative.with_suffix("").parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    """Every Python file of the packages (tests and the model repository's thin stubs are not part of them)."""
    return sorted(p for folder in SOURCES for p in (ROOT / folder).rglob("*.py")
                  if not any(part == "__pycache__" or part.startswith(".") for part in p.relative_to(ROOT).parts))


def imports_of(path: Path) -> set[str]:
    """The project modules ``path`` imports, resolved to absolute names (``from .x import y`` included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # ``from pkg import module``
    return {m for m in found if m.split(".")[0] in ("dfguard", "benchmarks")}


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports (names that are attributes, not modules, are dropped)."""
    files = source_files()
    modules = {module_name(p) for p in files}
    graph = {}
    for path in files:
        graph[module_name(path)] = {m for m in imports_of(path) if m in modules and m != module_name(path)}
    return graph


def group_of(module: str) -> str:
    """The longest layer entry that ``module`` is or lies under."""
    entries = [entry for layer in LAYERS for entry in layer]
    matches = [e for e in entries if module == e or module.startswith(e + ".")]
    if not matches:
        raise KeyError(f"{module} belongs to no layer: add it to LAYERS in tests/import_graph.py")
    return max(matches, key=len)


def layer_of(group: str) -> int:
    """The index of the layer holding ``group``."""
    return next(k for k, layer in enumerate(LAYERS) if group in layer)


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points up a layer, or between parts that stay apart."""
    found = []
    for module, imported in sorted(graph.items()):
        source = group_of(module)
        for target in sorted(imported):
            used = group_of(target)
            if layer_of(used) > layer_of(source):
                found.append(f"{module} imports {target}: layer {layer_of(source)} must not use layer {layer_of(used)}")
            elif used in APART.get(source, ()):
                found.append(f"{module} imports {target}: {source} and {used} stay apart")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle of imports between modules (each as the modules around it, the first repeated at the end),
    found as the strongly connected components of more than one module (Tarjan), one circle shown per component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [circle_in(graph, component) for component in components]


def circle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One circle through a strongly connected ``component``: from its first module, along imports inside it,
    back to the start (breadth first, so the shortest)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for target in sorted(graph.get(module, set()) & component):
            if target == start:
                return [*paths[module], start]
            if target not in paths:
                paths[target] = [*paths[module], target]
                queue.append(target)
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def group_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between layer entries (packages and top modules)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imported in graph.items():
        edges[group_of(module)].update(group_of(t) for t in imported)
    return {group: targets - {group} for group, targets in edges.items()}


def summary(path: Path, limit: int = 120) -> str:
    """The first sentence of a module's docstring (shortened to ``limit`` characters)."""
    doc = " ".join((ast.get_docstring(ast.parse(path.read_text())) or "").split("\n\n")[0].split())
    sentence = re.split(r"(?<!e\.g)(?<!i\.e)(?<=[a-z)`])\. ", doc, maxsplit=1)[0].rstrip(".")
    sentence = sentence.replace("|", "\\|")
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rsplit(" ", 1)[0] + " …"


def module_table() -> str:
    """The module index of docs/architecture.md: every module of the source tree, its layer and its first
    sentence, between the ``modules`` markers."""
    lines = [MODULES_BEGIN, "| module | layer | what it is |", "|---|---:|---|"]
    for path in source_files():
        name = module_name(path)
        shown = path.relative_to(ROOT).as_posix()
        lines.append(f"| `{shown}` | {layer_of(group_of(name))} | {summary(path)} |")
    return "\n".join([*lines, MODULES_END])


def architecture_with_table(text: str) -> str:
    """docs/architecture.md's text with its module index replaced by the current one."""
    pattern = re.compile(re.escape(MODULES_BEGIN) + ".*?" + re.escape(MODULES_END), re.S)
    if not pattern.search(text):
        raise KeyError(f"docs/architecture.md has no {MODULES_BEGIN} … {MODULES_END} block")
    return pattern.sub(lambda _: module_table(), text)


def graph_digest(graph: dict[str, set[str]]) -> str:
    """A hash of what the dependency picture shows (the layers and the arrows between parts): stored in the PNG,
    so a test can tell a picture that no longer shows the imports."""
    groups = group_graph(graph)
    shown = {"layers": LAYERS, "edges": sorted((s, t) for s, targets in groups.items() for t in targets)}
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]


def draw(graph: dict[str, set[str]], out: Path) -> Path:
    """The dependency picture: one row per layer (lowest at the bottom), an arrow from each part to what it uses."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    groups = group_graph(graph)
    places = {}
    for row, layer in enumerate(LAYERS):
        present = [g for g in layer if g in groups or any(g in t for t in groups.values())]
        for column, group in enumerate(present):
            places[group] = ((column + 1) / (len(present) + 1), 0.08 + row * 0.84 / (len(LAYERS) - 1))
    fig = Figure(figsize=(12, 7.5), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    upward = 0
    colours = dict(zip(sorted(groups), itertools.cycle(["tab:blue", "tab:orange", "tab:green",
                   "tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:pink"]), strict=False))
    for source, targets in groups.items():
        for target in targets:
            up = layer_of(target) > layer_of(source)
            upward += up  # drawn thick and red: the picture shows a broken contract at a glance
            ax.add_patch(FancyArrowPatch(places[source], places[target], arrowstyle="-|>", mutation_scale=12,
                                         shrinkA=22, shrinkB=22, color="red" if up else colours[source],
                                         linewidth=2.5 if up else 0.9, alpha=1.0 if up else 0.7,
                                         connectionstyle="arc3,rad=0.08", zorder=1))
    for group, (x, y) in places.items():
        ax.text(x, y, group.replace("dfguard.", "") if group != "dfguard" else "dfguard/__init__", ha="center",
                va="center", fontsize=10, zorder=2,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": "white", "edgecolor": "0.3"})
    for row in range(len(LAYERS)):
        ax.text(0.0, 0.08 + row * 0.84 / (len(LAYERS) - 1), f"layer {row}", ha="left", va="center", color="0.4")
    ax.set(xlim=(-0.02, 1.02), ylim=(0, 1))
    ax.set_title("deepfake-guard imports: each arrow from the part that uses to the part it uses, coloured by "
                 f"the user ({'none' if not upward else upward} pointing up a layer)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, metadata={"Description": f"import graph {graph_digest(graph)}"})
    return out


def picture_digest(path: Path) -> str | None:
    """The graph digest a dependency picture was drawn from (None when it carries none)."""
    from PIL import Image

    with Image.open(path) as image:
        description = image.info.get("Description", "")
    return description.removeprefix("import graph ") if description.startswith("import graph ") else None


if __name__ == "__main__":
    picture = Path(sys.argv[1]) if len(sys.argv) > 1 else ARCHITECTURE.parent / "dependencies.png"
    print(draw(import_graph(), picture))
    ARCHITECTURE.write_text(architecture_with_table(ARCHITECTURE.read_text()))
    print(f"{ARCHITECTURE}: module index of {len(source_files())} modules")
