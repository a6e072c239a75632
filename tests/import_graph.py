"""The import graph of the source tree, read statically (every ``import``, also inside functions), and its layers.

``tests/test_architecture.py`` checks the contract on it; run as a script it draws the dependency picture:

    python tests/import_graph.py docs/dependencies.png

Layers, lowest first: a module may import its own layer and the ones below, never one above. Within the
application layer, serving, the in-process pipeline and the client stay apart, except that the client may score
in process through the pipeline.
"""

from __future__ import annotations

import ast
import itertools
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# source folder → the package it installs as (setup.py's package_dir)
SOURCES = {"dfguard": "dfguard", "kernels": "dfguard.kernels", "train": "dfguard.train", "client": "dfguard.client",
           "benchmarks": "benchmarks"}
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dfguard.kernels", "dfguard.paths", "dfguard.errors", "dfguard.extras", "dfguard.config", "dfguard.appendfile",
     "dfguard.progress"),
    ("dfguard.faces", "dfguard.video", "dfguard.image", "dfguard.calibration", "dfguard.scoring",
     "dfguard.onnx_export"),
    ("dfguard.inference", "dfguard.visualize"),
    ("dfguard.serving", "dfguard.pipeline", "dfguard.client", "dfguard.explain"),
    ("dfguard.train",),
    ("dfguard.cli", "dfguard", "benchmarks"),
)
APART = {"dfguard.serving": ("dfguard.pipeline", "dfguard.client"), "dfguard.pipeline": ("dfguard.serving",
         "dfguard.client"), "dfguard.client": ("dfguard.serving",),
         "dfguard.explain": ("dfguard.serving",)}


def module_name(path: Path) -> str:
    """The dotted name a source file is imported as."""
    relative = path.relative_to(ROOT)
    parts = [SOURCES[relative.parts[0]], *relative.with_suffix("").parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    """Every Python file of the packages (tests and the model repository's thin stubs are not part of them)."""
    return sorted(p for folder in SOURCES for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


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


def group_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between layer entries (packages and top modules)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imported in graph.items():
        edges[group_of(module)].update(group_of(t) for t in imported)
    return {group: targets - {group} for group, targets in edges.items()}


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
    fig.savefig(out, dpi=110)
    return out


if __name__ == "__main__":
    print(draw(import_graph(), Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dependencies.png")))
