"""``dfguard calibrate`` on the trained tiny model, and its calibrated probabilities and verdicts served: the
ensemble answers what the in-process pipeline answers with the same spec, which is the calibration applied to
the raw scores."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import DFGUARD, assert_equal_to_local, infer_video

from dfguard.inference.spec import read_calibrated, read_spec
from dfguard.pipeline import LocalDetector
from dfguard.train.datasets import load_csv


@pytest.fixture(scope="module")
def calibrated(trained, prepared, tmp_path_factory) -> Path:
    """``dfguard calibrate`` on the validation split, through the CLI as a user runs it."""
    out = tmp_path_factory.mktemp("calibration")
    done = subprocess.run([DFGUARD, "calibrate", str(trained / "best.pt"), "--data", str(prepared), "--out",
                           str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Expected calibration error" in done.stdout and "dfguard export --calibration" in done.stdout
    return out


def test_calibrate_writes_a_calibration_operating_points_and_a_reliability_diagram(calibrated):
    fitted = read_calibrated(calibrated / "calibration.json")
    assert not fitted.calibration.identity and "val" in fitted.calibration.fitted_on
    assert [p.target_fpr for p in fitted.operating_points] == [0.1, 0.01, 0.001]
    for point in fitted.operating_points:
        assert point.fpr <= point.target_fpr and point.tpr_low <= point.tpr <= point.tpr_high
    one_percent = fitted.operating_points[1]
    assert fitted.verdict.fake_at == pytest.approx(min(max(one_percent.threshold, 0.0), 1.0))
    assert 0.0 <= fitted.verdict.real_at <= fitted.verdict.fake_at <= 1.0
    assert (calibrated / "reliability.png").stat().st_size > 10_000
    report = (calibrated / "calibration.md").read_text()
    assert "before" in report and "| 1.0% |" in report


def test_eval_reports_the_calibration_error_and_tpr_at_low_fpr(calibrated, trained, prepared, tmp_path):
    done = subprocess.run([DFGUARD, "eval", str(trained / "best.pt"), "--data", str(prepared), "--out", str(tmp_path),
                           "--calibration", str(calibrated / "calibration.json")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    video = json.loads((tmp_path / "metrics.json").read_text())["results"]["clean"]["all"]["video"]
    assert 0.0 <= video["ece"] <= 1.0 and 0.0 <= video["tpr@fpr0.01"] <= 1.0
    assert "tpr@fpr0.001" in (tmp_path / "metrics.md").read_text()


def test_the_served_probabilities_are_the_calibrated_ones(calibrated, trained, prepared, tmp_path, tritonserver):
    from dfguard.train.export import export_repository

    template = Path(__file__).resolve().parents[1] / "model_repository"
    fitted = read_calibrated(calibrated / "calibration.json")
    spec = export_repository(trained / "best.pt", tmp_path / "repository", template=template, calibrated=fitted)
    assert read_spec(tmp_path / "repository") == spec and spec.calibration == fitted.calibration
    local, raw = LocalDetector(trained / "best.pt", spec), LocalDetector(trained / "best.pt")
    videos = [r for r in load_csv(prepared.parent / "videos" / "manifest.csv") if r.split == "test"][::4]
    with tritonserver(tmp_path / "repository") as server:
        for record in videos:
            data = record.path.read_bytes()
            served, expected, uncalibrated = infer_video(server, data), local.score(data, 8), raw.score(data, 8)
            assert_equal_to_local(served, expected)
            np.testing.assert_allclose(served["FACE_SCORES"],
                                       spec.calibration.apply(uncalibrated.scores.face_scores), atol=1e-3)
            assert float(served["VIDEO_SCORE"][0]) == pytest.approx(
                float(spec.calibration.apply(uncalibrated.scores.video_score)), abs=1e-3)
            assert served["VERDICT"][0].decode() == spec.verdict.verdict(float(served["VIDEO_SCORE"][0]))
