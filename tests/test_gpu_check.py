"""benchmarks.gpu_check: its dry run on this CPU runs every step, records the results, and imports nothing the
bare GPU machine lacks (an import of any of those packages fails the run here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import REPO

# on the GPU machine: torch, timm, CuPy, numba-cuda, NumPy 2, SciPy, OpenCV, ONNX Runtime, and none of these
ABSENT_THERE = ("mediapipe", "av", "pytriton", "tritonclient", "nvidia.dali", "tensorrt", "sklearn", "skimage",
                "matplotlib", "onnx", "onnxscript", "tensorboard")
RUN_WITHOUT_THEM = f"""
import runpy, sys

for absent in {ABSENT_THERE!r}:
    sys.modules[absent] = None  # what Python does for a package that is not installed: import fails, find_spec is None
sys.argv = ["benchmarks.gpu_check", *sys.argv[1:]]
runpy.run_module("benchmarks.gpu_check", run_name="__main__")
"""


@pytest.mark.slow
def test_dry_run_runs_every_step_without_the_packages_the_gpu_machine_lacks(tmp_path):
    result = subprocess.run([sys.executable, "-c", RUN_WITHOUT_THEM, "--dry-run", "--out", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {step["name"]: step for step in record["steps"]}
    assert {name: step["status"] for name, step in steps.items()} == dict.fromkeys(
        ("kernels", "kernel-bench", "dct-step", "models"), "passed")
    assert steps["kernels"]["data"]["numba-cuda"] == {"cases": 6, "failures": 0}  # 3 simulator inputs × 2 outputs
    assert "cupy: skipped (no GPU)" in steps["kernels"]["detail"]
    models = steps["models"]["data"]["rows"]
    assert {(r["preset"], r["stream"]) for r in models} == {
        (p, s) for p in ("dual_stream", "full") for s in ("rgb_stream", "freq_stream", "fusion", "whole model")}
    assert all(r["faces_per_s"] > 0 for r in models)
    sections = (tmp_path / "sections.md").read_text()
    for key in ("kernels-gpu", "models-gpu"):
        assert sections.count(f"<!-- {key}:begin -->") == 1 and f"<!-- {key}:end -->" in sections
    assert "| step | status |" in result.stdout  # the printed summary


def test_a_step_that_breaks_fails_the_run_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import gpu_check

    monkeypatch.setitem(gpu_check.STEPS, "dct-step", lambda settings: 1 / 0)
    assert gpu_check.main(["--dry-run", "--steps", "dct-step", "kernel-bench", "--out", str(tmp_path)]) == 1
    steps = json.loads((tmp_path / "gpu_check.json").read_text())["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [("dct-step", "failed"), ("kernel-bench", "passed")]
    assert "ZeroDivisionError" in steps[0]["detail"][-1]


def test_record_merges_the_sections_into_results(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import gpu_check, results

    page = tmp_path / "RESULTS.md"
    page.write_text("# Benchmark results\n\n<!-- kernels-gpu:begin -->\nold\n<!-- kernels-gpu:end -->\n\nkept\n")
    monkeypatch.setattr(results, "RESULTS", page)
    (tmp_path / "sections.md").write_text(results.render_section("kernels-gpu", "new title", "new body", "H200",
                                                                   "make gpu-check", "2026-12-01"))
    assert gpu_check.main(["--record", str(tmp_path)]) == 0
    text = page.read_text()
    assert "old" not in text and "new body" in text and "Machine: H200" in text and text.endswith("kept\n")
