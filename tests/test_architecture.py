"""The structure a user of each part relies on: one-way imports, light installs, light serving processes, a CLI
that names what is missing, and one serving spec."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, requires

import numpy as np
import pytest
from import_graph import (
    ARCHITECTURE,
    architecture_with_table,
    cycles,
    draw,
    graph_digest,
    import_graph,
    picture_digest,
    violations,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from dfguard import cli
from dfguard.extras import MODULE_EXTRAS, missing_extra_message
from dfguard.faces.settings import CropConfig
from dfguard.inference.spec import SPEC_VERSION, ServingSpec, SpecError, parse_spec, read_spec
from dfguard.scoring import VerdictThresholds

HEAVY = tuple(MODULE_EXTRAS)  # everything an extra brings: torch, cv2, av, onnxruntime, PIL, matplotlib, ...


def test_imports_point_one_way_without_exceptions_or_circles():
    graph = import_graph()
    assert violations(graph) == []
    assert cycles(graph) == []


def test_the_contract_catches_an_import_against_the_layers():
    graph = import_graph()
    graph["dfguard.serving.steps"].add("dfguard.train.export")
    graph["dfguard.kernels.highpass"].add("dfguard.faces.detect")
    graph["dfguard.pipeline"].add("dfguard.client.batch")
    graph["dfguard.client.batch"].add("dfguard.pipeline")  # the client scoring in process: the CLI composes them
    found = violations(graph)
    assert len(found) == 4 and "dfguard.serving.steps imports dfguard.train.export" in found[3]
    assert "dfguard.client.batch imports dfguard.pipeline: dfguard.client and dfguard.pipeline stay apart" in found


def test_the_contract_finds_a_planted_circle_inside_one_layer():
    graph = import_graph()
    graph["dfguard.train.data"].add("dfguard.train.evaluate")  # evaluate → data already: a circle within train/
    graph["dfguard.faces.tracks"].add("dfguard.faces.search")  # and a longer one through the face search
    found = cycles(graph)
    assert ["dfguard.faces.search", "dfguard.faces.tracks", "dfguard.faces.search"] in found and len(found) == 2
    (train,) = [c for c in found if c[0].startswith("dfguard.train.")]
    assert {"dfguard.train.data", "dfguard.train.evaluate"} <= set(train) and train[0] == train[-1]
    assert all(target in graph[source] for source, target in itertools.pairwise(train))  # a real path of imports
    assert violations(graph) == []  # neither points up a layer: only the cycle check sees them


def test_the_dependency_picture_and_the_module_index_are_current(tmp_path):
    """docs/dependencies.png shows the imports as they are (it carries a digest of the graph it was drawn from), and
    docs/architecture.md's module index lists every module: ``python tests/import_graph.py`` redraws both."""
    graph = import_graph()
    path = draw(graph, tmp_path / "dependencies.png")
    assert path.stat().st_size > 20_000 and picture_digest(path) == graph_digest(graph)
    hint = "run: python tests/import_graph.py"
    assert picture_digest(ARCHITECTURE.parent / "dependencies.png") == graph_digest(graph), hint
    assert architecture_with_table(ARCHITECTURE.read_text()) == ARCHITECTURE.read_text(), hint
    graph["dfguard.faces.search"].add("dfguard.scoring")  # a new arrow between parts: the picture is stale
    assert graph_digest(graph) != picture_digest(ARCHITECTURE.parent / "dependencies.png")


def imported_modules(code: str, blocked: tuple[str, ...] = ()) -> set[str]:
    """Top-level modules loaded after running ``code`` in a fresh interpreter (``blocked`` ones made unimportable)."""
    script = (f"import sys\nfor name in {list(blocked)!r}:\n    sys.modules[name] = None\n{code}\n"
              "import json\nprint(json.dumps(sorted({m.split('.')[0] for m, v in sys.modules.items() if v})))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_serving_steps_load_no_torch():
    code = ("import dfguard.serving.steps, dfguard.video, dfguard.image, dfguard.inference.spec, "
            "dfguard.inference.features, dfguard.scoring\n"
            "import dfguard.faces.search, dfguard.faces.crops")
    assert imported_modules(code).isdisjoint({"torch", "timm", "mediapipe", "matplotlib", "sklearn"})


def test_the_client_and_its_cli_load_nothing_heavy():
    code = ("from dfguard.client import DeepfakeClient\nfrom dfguard.client.batch import score_files\n"
            "from dfguard.cli import build_parser\nbuild_parser(['score']).parse_args(['score', 'x', '--out', 'y'])")
    assert imported_modules(code).isdisjoint(HEAVY)  # all installed here, and none of them loaded


def test_score_over_grpc_runs_on_the_core_install(tmp_path):
    """With every heavy library unimportable, ``dfguard score --url`` still runs and records the refused
    connection as the input's error (nothing listens on the port)."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 64)
    out = tmp_path / "results.jsonl"
    args = ["score", str(video), "--url", "127.0.0.1:9", "--out", str(out), "--retries", "1", "--timeout", "5",
            "--no-progress"]
    code = f"from dfguard.cli import main\nassert main({args!r}) == 1  # one input failed: the refused connection"
    imported_modules(code, blocked=HEAVY)
    record = json.loads(out.read_text())
    assert record["status"] == "error" and record["path"] == str(video)


def test_a_command_of_a_missing_extra_says_which_extra_to_install(tmp_path):
    script = ("import sys\nsys.modules['torch'] = None\nfrom dfguard.cli import main\n"
              f"sys.exit(main(['train', '--config', 'tiny', '--data', {str(tmp_path)!r}, '--out', "
              f"{str(tmp_path / 'run')!r}]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "dfguard train needs torch" in result.stderr and "pip install 'deepfake-guard[train]'" in result.stderr
    assert "Traceback" not in result.stderr


def distributions_of(name: str, extras: tuple[str, ...] = ()) -> set[str]:
    """The distributions ``pip install name[extras]`` resolves to, read from the installed metadata (offline)."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    stack = [(name, extras)]
    while stack:
        current, wanted = stack.pop()
        key = (canonicalize_name(current), wanted)
        if key in seen:
            continue
        seen.add(key)
        try:
            requirements = requires(current) or []
        except PackageNotFoundError:
            pytest.fail(f"{current} (required by the {name} closure) is not installed: cannot resolve offline")
        for text in requirements:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in (wanted or ("",))]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            stack.append((requirement.name, tuple(sorted(requirement.extras))))
    return {name for name, _ in seen}


def test_the_core_install_resolves_without_torch():
    core = distributions_of("deepfake-guard")
    assert {"tritonclient", "numpy", "tqdm", "grpcio"} <= core
    assert core.isdisjoint({"torch", "torchvision", "timm", "mediapipe", "opencv-contrib-python", "onnxruntime",
                            "av", "numba", "scikit-learn", "matplotlib", "nvidia-pytriton"}), sorted(core)
    assert "torch" in distributions_of("deepfake-guard", ("train",))
    assert "torch" not in distributions_of("deepfake-guard", ("serve",))


def test_every_module_named_for_an_extra_is_installed_by_that_extra():
    core = distributions_of("deepfake-guard")
    providers = packages_distributions()
    for module, extra in MODULE_EXTRAS.items():
        if module in ("nvidia", "tensorrt") and module not in providers:
            continue  # DALI's namespace and TensorRT: GPU-only wheels
        closure = distributions_of("deepfake-guard", (extra,))
        names = {canonicalize_name(d) for d in providers.get(module, [])}
        assert names & closure, f"{module} ({names}) is not installed by the {extra} extra"
        assert not names & core, f"{module} comes with the core install, not only with {extra}"


def test_user_errors_print_one_line_and_bugs_keep_their_traceback(capsys, monkeypatch):
    assert cli.main(["eval"]) == 2
    assert "give a checkpoint" in capsys.readouterr().err
    for argv in (["--debug", "eval"], ["eval", "--debug"]):
        with pytest.raises(ValueError, match="give a checkpoint"):
            cli.main(argv)
    assert missing_extra_message(ModuleNotFoundError(name="cv2.ximgproc"), "x") is None  # cv2 itself is here

    def buggy(args: object) -> int:
        raise TypeError("unsupported operand")

    monkeypatch.setitem(cli.COMMANDS, "backends", cli.Command("h", cli.add_no_arguments, buggy))
    with pytest.raises(TypeError, match="unsupported operand"):
        cli.main(["backends"])


# --- the serving spec -------------------------------------------------------------------------------------------

def example_spec() -> ServingSpec:
    return ServingSpec("tiny", 2, "cluster", (0.0, 1.0), (1.0, 0.0), CropConfig(size=128), cutoff=4,
                       verdict=VerdictThresholds(fake_at=0.7, real_at=0.2), models=("fusion",))


def test_the_spec_round_trips_through_its_file(tmp_path):
    spec = example_spec()
    assert read_spec(spec.write(tmp_path)) == spec
    assert json.loads((tmp_path / "serving_spec.json").read_text())["version"] == SPEC_VERSION
    # one face on the fake centre, then face_finder's placeholder row (not scored)
    result = spec.scorer().score_faces(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2), np.array([0]), np.array([0]),
                                       1, spec.tracks)
    assert result.verdict == "fake" and result.video_score > 0.7 and result.face_scores.shape == (1,)


@pytest.mark.parametrize(("change", "message"), [
    ({"version": SPEC_VERSION + 1}, f"version {SPEC_VERSION + 1}, this dfguard reads version {SPEC_VERSION}"),
    ({"version": None}, "serving spec version None"),
    ({"thresholds": {"fake": 0.6}}, "unknown key"),
    ({"cutoff": "4"}, "cutoff must be int"),
    ({"score_rule": "softmax"}, "score_rule must be one of"),
    ({"verdict": {"fake_at": 0.3, "real_at": 0.6}}, "real_at <= fake_at"),
    ({"detector": {"name": "yolo"}}, "unknown face detector 'yolo'"),
    ({"tracks": {"max_faces": 0}}, "must be at least 1"),
])
def test_a_spec_that_does_not_match_the_schema_is_refused_by_name(change, message):
    data = json.loads(example_spec().to_json()) | change
    with pytest.raises(SpecError, match=message):
        parse_spec(json.dumps(data), "serving_spec.json")


def test_a_missing_spec_says_how_to_make_one(tmp_path):
    with pytest.raises(SpecError, match="export the model first"):
        read_spec(tmp_path)



def test_no_test_module_imports_another():
    """Test modules share helpers through ``tests/helpers.py`` and the data makers beside it, never through each
    other or ``conftest`` (an import of a test module runs its collection-time code twice, under two names)."""
    import ast
    from pathlib import Path

    tests = Path(__file__).parent
    found = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.name} imports {n}" for n in names if n.split(".")[0].startswith("test_")
                      or n.split(".")[0] == "conftest"]
    assert found == []
