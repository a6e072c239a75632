"""The installed distribution and the ``dfguard`` command, as a user meets them."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import matplotlib.cbook
import numpy as np
import pytest
from helpers import DFGUARD, REPO
from PIL import Image

import dfguard

GRACE_HOPPER = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script."""
    return subprocess.run([str(DFGUARD), *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_distribution_is_installed_with_the_package_version():
    assert importlib.metadata.version("deepfake-guard") == dfguard.__version__
    entry_points = importlib.metadata.distribution("deepfake-guard").entry_points
    assert [ep.value for ep in entry_points if ep.name == "dfguard"] == ["dfguard.cli:main"]


def test_card_folders_are_subpackages_of_dfguard():
    import dfguard.client
    import dfguard.kernels
    import dfguard.train

    assert Path(dfguard.kernels.__file__).parent == REPO / "kernels" or "site-packages" in dfguard.kernels.__file__
    assert (importlib.resources.files("dfguard.kernels") / "dct8x8.cu").is_file()
    for bare in ("kernels", "train", "client"):
        assert importlib.util.find_spec(bare) is None, f"a bare {bare!r} package is importable"


def test_a_checkout_without_an_install_maps_its_three_folders_and_nothing_else(tmp_path):
    """``PYTHONPATH=<checkout>`` with no install (a bare GPU machine): ``dfguard.kernels``, ``.train`` and
    ``.client`` import from the checkout's folders; ``dfguard.setup``, ``dfguard.benchmarks`` and ``dfguard.tests``
    (folders and files beside them) do not."""
    code = ("import sys\n"
            "sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]  # no install\n"
            f"sys.path.insert(0, {str(REPO)!r})\n"
            "import importlib, json\n"
            "found = {}\n"
            "for name in ('kernels', 'train.config', 'client.results', 'setup', 'benchmarks', 'tests'):\n"
            "    try:\n"
            "        found[name] = importlib.import_module('dfguard.' + name).__file__\n"
            "    except ModuleNotFoundError:\n"
            "        found[name] = None\n"
            "print(json.dumps(found))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["kernels"] == str(REPO / "kernels" / "__init__.py")
    assert found["train.config"] == str(REPO / "train" / "config.py")
    assert found["client.results"] == str(REPO / "client" / "results.py")
    assert found["setup"] is None and found["benchmarks"] is None and found["tests"] is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("dfguard.setup")  # nor in this (installed) interpreter


def test_wheel_maps_the_folders_into_dfguard(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("deepfake_guard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dfguard/kernels/highpass.py" in names
    assert "dfguard/kernels/dct8x8.cu" in names
    assert "dfguard/train/__init__.py" in names and "dfguard/client/__init__.py" in names
    assert not [n for n in names if n.split("/")[0] in {"kernels", "train", "client", "tests", "benchmarks"}]


def test_cli_version_and_help():
    assert run_cli("--version").stdout.strip() == f"dfguard {dfguard.__version__}"
    help_text = run_cli("--help").stdout
    for command in ("backends", "dct-map", "faces", "synth", "prepare", "demo"):
        assert command in help_text


def test_cli_backends_lists_the_cpu_backends_as_available():
    lines = dict(line.split(None, 1) for line in run_cli("backends").stdout.strip().splitlines())
    assert lines["numpy"] == "available" and lines["numba"] == "available"
    assert set(lines) == {"numpy", "numba", "numba-cuda", "cupy"}


def test_cli_dct_map_draws_a_real_photo(tmp_path):
    out = tmp_path / "map.png"
    result = run_cli("dct-map", str(GRACE_HOPPER), "-o", str(out), "--cutoff", "3")
    assert result.returncode == 0, result.stderr
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > 1000 and picture.height > 300
        pixels = np.asarray(picture.convert("L"), dtype=np.float32)
    assert pixels.std() > 20  # a figure with content, not a blank page


def test_cli_errors_are_one_line_and_exit_2(tmp_path):
    result = run_cli("dct-map", str(tmp_path / "missing.jpg"))
    assert result.returncode == 2
    assert "dfguard dct-map: error:" in result.stderr and "missing.jpg" in result.stderr
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tiny)
    result = run_cli("dct-map", str(tiny))
    assert result.returncode == 2 and "at least 8x8" in result.stderr


@pytest.mark.slow  # trains a model
@pytest.mark.integration  # and serves it in tritonserver
def test_demo_runs_from_synthetic_videos_to_a_report(tmp_path):
    result = run_cli("demo", "--out", str(tmp_path / "demo"), "--videos-per-class", "6", "--quick",
                     "--repository-template", str(REPO / "model_repository"))
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "demo"
    report = (out / "report.md").read_text()
    assert result.stdout.endswith(report) and "8/8 explain" in result.stdout
    assert "| seen: nearest, transposed_conv |" in report and "| held out: bilinear, pixel_shuffle |" in report
    assert re.search(r"Served: \d+ videos over gRPC .*; [\d.]+ videos/s", report)
    assert re.search(r"Two people, one forged .*, 2 tracks:", report) and report.count("- track ") == 2
    assert "(the forged person)" in report and "(the real person)" in report
    for picture in ("eval/roc.png", "eval/histogram.png", "eval/reliability.png", "explain/faces.png",
                    "explain/timeline.png", "explain/frequency.png", "explain/embedding.png"):
        assert (out / picture).stat().st_size > 10_000 and str(out / picture) in report
    assert (out / "repository/fusion/1/model.onnx").is_file()
    from dfguard.client.results import ResultsFile
    from dfguard.train.synthetic import split_names

    test_per_class = split_names(6, {"train": 0.6, "val": 0.2, "test": 0.2}).count("test")
    records = ResultsFile(out / "served/results.jsonl").read()
    assert len(records) == 5 * test_per_class + 1 and all(r.status != "error" for r in records)
    # progress bars off a terminal: one line each, no redraws
    assert "\r" not in result.stderr and result.stderr.count("synthetic videos: 100%") == 1

    again = run_cli("demo", "--out", str(out), "--videos-per-class", "6", "--quick",
                    "--repository-template", str(REPO / "model_repository"))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already there" in again.stdout and "already holds this model" in again.stdout
    assert "synthetic videos:" not in again.stderr and "preparing:" not in again.stderr


def test_ci_runs_the_readme_test_command_and_it_runs_ruff_and_pytest():
    readme = (REPO / "README.md").read_text()
    assert "make test " in readme and "make demo " in readme  # the two commands, in the README's code block
    ci = [line for line in (REPO / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "make test"
    plan = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "ruff check ." in plan and "pytest" in plan


def test_cli_faces_draws_the_detection_and_lists_it(tmp_path):
    out = tmp_path / "faces.png"
    result = run_cli("faces", str(GRACE_HOPPER), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("face score") == 1
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > 1000
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(flat)
    result = run_cli("faces", str(flat), "-o", str(tmp_path / "none.png"))
    assert result.returncode == 0 and "face score" not in result.stdout and (tmp_path / "none.png").exists()


def test_cli_faces_finds_every_face_of_a_wide_shot_with_tiles(tmp_path):
    from dfguard.train.scenes import make_scene

    rng = np.random.default_rng(7)
    while True:  # two people, both wholly inside, one small
        scene = make_scene(rng, width=1920, height=1080, faces=2, gray=False)
        inside = (scene.boxes[:, 0] > 0) & (scene.boxes[:, 2] < 1920) & (scene.boxes[:, 1] > 0) & (
            scene.boxes[:, 3] < 1080)
        if len(scene.boxes) == 2 and inside.all() and (scene.boxes[:, 3] - scene.boxes[:, 1]).min() < 120:
            break
    path = tmp_path / "wide.png"
    Image.fromarray(scene.image).save(path)
    result = run_cli("faces", str(path), "-o", str(tmp_path / "wide_faces.png"), "--detector",
                     "blazeface_full_range", "--min-face-px", "48")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("face score") == 2 and (tmp_path / "wide_faces.png").stat().st_size > 50_000


def test_nothing_in_the_repository_points_outside_it():
    """A user who clones the repository has only the repository: no link or path may lead out of it."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    suffixes = {".md", ".py", ".yaml", ".pbtxt", ".toml", ".cfg", ".txt", ""}
    text_files = [REPO / name for name in tracked if Path(name).suffix in suffixes and (REPO / name).is_file()]
    assert len(text_files) > 50
    outside = re.compile(r"\.\./shared|\.\./DESIGN\.md|\.\./\.library")
    link = re.compile(r"\]\(([^)#\s]+)")  # markdown link targets
    problems = []
    for path in text_files:
        text = path.read_text(errors="replace")
        problems += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in outside.finditer(text)]
        for target in link.findall(text) if path.suffix == ".md" else []:
            if "://" not in target and REPO not in (path.parent / target).resolve().parents:
                problems.append(f"{path.relative_to(REPO)}: link to {target}")
    assert not problems, problems
