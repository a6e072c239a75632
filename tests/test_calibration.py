"""dfguard.calibration: Platt scaling against scikit-learn, ECE by hand, operating points that meet their target,
and the scoring rule and serving spec carrying a calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_curve

from dfguard.calibration import (
    Calibration,
    ece_if_calibrated,
    ece_interval,
    expected_calibration_error,
    fit_platt,
    logit,
    operating_point,
    threshold_for_fnr,
    threshold_for_fpr,
)
from dfguard.faces.settings import CropConfig
from dfguard.inference.spec import CalibratedScores, ServingSpec, SpecError, parse_spec
from dfguard.scoring import VerdictThresholds, aggregate_faces


def overconfident(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True probabilities, labels drawn from them, and a model's scores that are too sure of themselves."""
    truth = 1 / (1 + np.exp(-rng.normal(0, 1.5, n)))
    labels = (rng.random(n) < truth).astype(int)
    raw = 1 / (1 + np.exp(-(3.0 * logit(truth) + 0.8)))
    return truth, labels, raw


def test_platt_equals_a_weighted_logistic_regression(rng):
    """Platt's smoothed targets as sample weights (each video once as fake with weight t, once as real with
    1 − t): scikit-learn's unregularised logistic regression on the logit gives the same slope and intercept."""
    _, labels, raw = overconfident(rng, 400)
    ours = fit_platt(raw, labels)
    fakes, reals = labels.sum(), len(labels) - labels.sum()
    target = np.where(labels == 1, (fakes + 1) / (fakes + 2), 1 / (reals + 2))
    x = np.concatenate([logit(raw), logit(raw)])[:, None]
    theirs = LogisticRegression(C=1e10, tol=1e-12, max_iter=10_000).fit(
        x, np.r_[np.ones(len(raw)), np.zeros(len(raw))], sample_weight=np.r_[target, 1 - target])
    assert ours.slope == pytest.approx(theirs.coef_[0, 0], rel=1e-4)
    assert ours.intercept == pytest.approx(theirs.intercept_[0], abs=1e-4)


def test_calibration_recovers_the_true_probabilities(rng):
    truth, labels, raw = overconfident(rng, 5000)
    fitted = fit_platt(raw, labels, fitted_on="synthetic")
    calibrated = fitted.apply(raw)
    assert expected_calibration_error(raw, labels) > 0.08  # the raw scores are visibly off
    assert expected_calibration_error(calibrated, labels) < 0.03
    assert np.abs(calibrated - truth).mean() < 0.03
    assert np.all(np.diff(calibrated[np.argsort(raw)]) >= 0)  # increasing: rankings (and AUC) unchanged
    assert fitted.slope == pytest.approx(1 / 3, rel=0.15) and fitted.fitted_on == "synthetic"


def test_identity_and_bad_calibrations():
    scores = np.array([0.0, 0.2, np.nan, 1.0])
    np.testing.assert_array_equal(Calibration().apply(scores), scores)
    assert np.isnan(Calibration(2.0, 0.1).apply(scores)[2])
    with pytest.raises(ValueError, match="slope must be positive"):
        Calibration(slope=0.0)
    with pytest.raises(ValueError, match="both classes"):
        fit_platt(np.array([0.2, 0.3]), np.array([0, 0]))
    with pytest.raises(ValueError, match="rank fakes below reals"):
        fit_platt(np.linspace(0.1, 0.9, 40), np.r_[np.ones(20), np.zeros(20)])


def test_expected_calibration_error_by_hand():
    # bin [0.1, 0.2): predictions 0.1, 0.1, outcomes 0, 1 → gap 0.4; bin [0.9, 1]: 0.9, outcome 1 → gap 0.1
    probabilities, labels = np.array([0.1, 0.1, 0.9]), np.array([0, 1, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx((2 * 0.4 + 0.1) / 3)


def test_the_ece_of_a_calibrated_model_and_its_interval_shrink_with_the_set(rng):
    floors, widths = [], []
    for n in (40, 400, 4000):
        p = rng.uniform(0, 1, n)
        labels = rng.random(n) < p  # calibrated by construction
        floors.append(ece_if_calibrated(p))
        low, high = ece_interval(p, labels)
        widths.append(high - low)
        assert low < high and low < 2 * floors[-1]  # a calibrated model's ECE is noise at every size
    assert floors[0] > 2.5 * floors[1] > 2.5 * 2.5 * floors[2]  # about 1/sqrt(n): 40 videos cannot show 0.05
    assert widths[0] > 2 * widths[1] > 4 * widths[2]
    assert ece_if_calibrated(np.array([0.0, 1.0] * 20)) == 0.0  # certain predictions have no sampling noise
    shifted = np.clip(rng.uniform(0, 1, 4000) + 0.2, 0, 1)  # overconfident by 0.2 where not clipped
    low, _ = ece_interval(shifted, rng.random(4000) < shifted - 0.2)
    assert low > 0.1 > ece_if_calibrated(shifted)


@pytest.mark.parametrize("target", [0.1, 0.01, 0.05])
def test_the_fpr_threshold_meets_its_target_and_is_the_lowest_that_does(rng, target):
    reals = rng.random(301)
    threshold = threshold_for_fpr(reals, target)
    assert (reals >= threshold).mean() <= target
    below = reals[reals < threshold].max()  # one step lower would flag one real video more
    assert (reals >= below).mean() > target


def test_the_fnr_threshold_passes_at_most_its_share_of_fakes(rng):
    fakes = rng.random(200)
    threshold = threshold_for_fnr(fakes, 0.05)
    assert (fakes <= threshold).mean() <= 0.05
    assert (fakes <= fakes[fakes > threshold].min()).mean() > 0.05


def test_an_operating_point_matches_the_roc_curve_with_a_bootstrap_interval(rng):
    labels = np.r_[np.zeros(500), np.ones(500)].astype(int)
    scores = np.r_[rng.normal(0, 1, 500), rng.normal(2, 1, 500)]
    point = operating_point(scores, labels, 0.01, resamples=300)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    k = np.searchsorted(-thresholds, -point.threshold, side="right") - 1  # the ROC point at our threshold
    assert point.fpr == pytest.approx(fpr[k]) and point.tpr == pytest.approx(tpr[k])
    assert point.fpr <= 0.01 and point.reals == point.fakes == 500
    assert point.tpr_low <= point.tpr <= point.tpr_high and point.tpr_high - point.tpr_low < 0.3


def test_the_scoring_rule_calibrates_every_score_and_judges_the_calibrated_video():
    calibration = Calibration(slope=0.5, intercept=-1.5)
    faces, frames, tracks = np.array([0.9, 0.95, 0.2, 0.3]), np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])
    counts = np.array([True, True])
    raw = aggregate_faces(faces, frames, tracks, 2, counts)
    thresholds = VerdictThresholds(fake_at=0.5, real_at=0.3)
    calibrated = aggregate_faces(faces, frames, tracks, 2, counts, thresholds, calibration)
    np.testing.assert_allclose(calibrated.face_scores, calibration.apply(faces))
    np.testing.assert_allclose(calibrated.track_scores, calibration.apply(raw.track_scores))
    np.testing.assert_allclose(calibrated.frame_scores, calibration.apply(raw.frame_scores))
    assert calibrated.video_score == pytest.approx(float(calibration.apply(raw.video_score)))
    assert calibrated.video_score == pytest.approx(calibrated.track_scores.max())  # increasing: still the max
    assert raw.video_score > 0.5 > calibrated.video_score  # raw 0.925 would be fake; calibrated it is not
    assert calibrated.verdict == thresholds.verdict(calibrated.video_score) == "uncertain"


def test_the_serving_spec_carries_the_calibration_and_refuses_older_versions(rng):
    labels = np.r_[np.zeros(100), np.ones(100)].astype(int)
    scores = np.r_[rng.uniform(0, 0.6, 100), rng.uniform(0.4, 1, 100)]
    fitted = CalibratedScores(fit_platt(scores, labels, "test data"), VerdictThresholds(0.7, 0.2),
                              (operating_point(scores, labels, 0.01, resamples=50),))
    spec = ServingSpec(preset="tiny", stage=2, score_rule="cluster", center_real=(0.0, 1.0), center_fake=(1.0, 0.0),
                       crop=CropConfig(size=128), cutoff=4, verdict=fitted.verdict, calibration=fitted.calibration,
                       operating_points=fitted.operating_points)
    again = parse_spec(spec.to_json())
    assert again == spec and again.scorer().calibration == fitted.calibration
    older = json.loads(spec.to_json())
    older["version"] = 2
    for key in ("calibration", "operating_points"):
        del older[key]
    with pytest.raises(SpecError, match="export the model again"):
        parse_spec(json.dumps(older))


def test_moving_a_calibration_to_another_share_of_fakes(rng):
    """Fitted where 80 % are fakes, moved to 50 %: it matches a fit on balanced data and is calibrated there."""
    from dfguard.calibration import for_fake_rate

    _, labels, raw = overconfident(rng, 20_000)
    fakes, reals = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    count = min(len(fakes), len(reals)) // 2
    balanced = np.r_[fakes[:count], reals[:count]]
    skewed = np.r_[fakes[count:count + 4 * (count // 5)], reals[count:count + count // 5]]  # 80 % fakes
    fitted = fit_platt(raw[skewed], labels[skewed])
    moved = for_fake_rate(fitted, labels[skewed].mean(), 0.5)
    reference = fit_platt(raw[balanced], labels[balanced])
    assert moved.slope == fitted.slope and moved.intercept == pytest.approx(reference.intercept, abs=0.15)
    assert expected_calibration_error(moved.apply(raw[balanced]), labels[balanced]) < 0.03
    assert expected_calibration_error(fitted.apply(raw[balanced]), labels[balanced]) > 0.06  # unmoved: off
    assert "moved from 80% fakes to 50%" in moved.fitted_on
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        for_fake_rate(fitted, 0.8, 1.0)


def test_invert_gives_back_the_raw_scores_a_calibration_mapped():
    raw = np.array([0.01, 0.2, 0.5, 0.77, 0.99])  # (probabilities are clipped 1e-6 from 0 and 1 on the way)
    for calibration in (Calibration(2.0, -1.0), Calibration(0.5, 0.3), Calibration()):
        np.testing.assert_allclose(calibration.invert(calibration.apply(raw)), raw, atol=1e-9)
