"""From a model's raw scores to probabilities a moderator can act on, and from target error rates to thresholds.

``Calibration`` is Platt scaling, ``P(fake) = sigmoid(slope·logit(s) + intercept)`` of a raw score ``s``, fitted
on the video scores of a validation split. Platt rather than isotonic regression: two parameters fit from a few
hundred videos without overfitting, the map is strictly increasing (so rankings, AUC and which track is the
most suspicious never change) and smooth (no steps that put many videos on one probability); isotonic needs
thousands of videos per class to beat it. The same map turns every raw score the scorer produces (faces,
frames, tracks, the video) into a probability: because it is increasing, the calibrated video score is still
the highest calibrated track score.

``operating_point`` finds, for a target false-positive rate on real videos, the threshold that meets it and the
true-positive rate there, with a bootstrap interval. NumPy only: the serving steps apply calibrations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPSILON = 1e-6  # raw scores are clipped to [ε, 1 − ε] before the logit


def logit(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 − p))`` of probabilities clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, np.float64), EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of raw scores (identity by default: slope 1, intercept 0); ``fitted_on`` says on what."""

    slope: float = 1.0
    intercept: float = 0.0
    fitted_on: str = ""

    def __post_init__(self) -> None:
        if not self.slope > 0:
            raise ValueError(f"a calibration's slope must be positive (an increasing map), got {self.slope}")

    @property
    def identity(self) -> bool:
        return self.slope == 1.0 and self.intercept == 0.0

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw scores (NaN stays NaN; the identity returns the scores unchanged)."""
        scores = np.asarray(scores, np.float64)
        if self.identity:
            return scores
        return 1 / (1 + np.exp(-(self.slope * logit(scores) + self.intercept)))

    def invert(self, probabilities: np.ndarray) -> np.ndarray:
        """The raw scores these calibrated probabilities came from (``apply`` undone)."""
        probabilities = np.asarray(probabilities, np.float64)
        if self.identity:
            return probabilities
        return 1 / (1 + np.exp(-(logit(probabilities) - self.intercept) / self.slope))


def fit_platt(scores: np.ndarray, labels: np.ndarray, fitted_on: str = "", iterations: int = 100) -> Calibration:
    """The Platt calibration of raw ``scores`` for binary ``labels`` (1 = fake): logistic regression on the
    logit, by Newton's method, with Platt's smoothed targets so separable data keeps a finite slope."""
    x, y = logit(scores), np.asarray(labels, np.float64)
    if len(x) != len(y) or len(set(y.tolist())) < 2:
        raise ValueError(f"calibration needs scores of both classes, got {len(y)} labels {sorted(set(y.tolist()))} "
                         f"(a split of real videos alone: calibrate on their self-blends, --self-blend)")
    fakes, reals = y.sum(), len(y) - y.sum()
    target = np.where(y == 1, (fakes + 1) / (fakes + 2), 1 / (reals + 2))  # Platt (1999)
    design = np.stack([x, np.ones_like(x)], 1)
    weights = np.zeros(2)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-design @ weights))
        gradient = design.T @ (p - target)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-10:
            break
    slope, intercept = float(weights[0]), float(weights[1])
    if not slope > 0:  # scores that rank fakes below reals: no increasing map helps
        raise ValueError(f"the scores rank fakes below reals (fitted slope {slope:.3f}): nothing to calibrate")
    return Calibration(slope, intercept, fitted_on)


def for_fake_rate(calibration: Calibration, fitted_rate: float, fake_rate: float) -> Calibration:
    """The calibration moved from the share of fakes it was fitted on to the one expected in use (prior shift:
    the posterior odds scale by the ratio of the priors' odds, so only the intercept changes)."""
    for rate in (fitted_rate, fake_rate):
        if not 0.0 < rate < 1.0:
            raise ValueError(f"a share of fakes must be strictly between 0 and 1, got {rate}")
    shift = float(logit(np.array(fake_rate)) - logit(np.array(fitted_rate)))
    note = f"{calibration.fitted_on}; moved from {fitted_rate:.0%} fakes to {fake_rate:.0%}"
    return Calibration(calibration.slope, calibration.intercept + shift, note)


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of predicted probability: the mean prediction, the fraction of fakes, the count
    (bins without a sample are NaN, count 0)."""
    p, y = np.asarray(probabilities, np.float64), np.asarray(labels, np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, p, minlength=bins) / counts
        observed = np.bincount(which, y, minlength=bins) / counts
    return mean_p, observed, counts


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between predicted probability and observed fake rate over ``bins``."""
    mean_p, observed, counts = reliability(probabilities, labels, bins)
    used = counts > 0
    return float((np.abs(mean_p[used] - observed[used]) * counts[used]).sum() / counts.sum())


def ece_interval(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10, resamples: int = 1000,
                 seed: int = 0) -> tuple[float, float]:
    """The middle 95 % of the ECE measured on bootstrap resamples of the videos (drawn with replacement): the
    spread of the ECE on other sets of this size. Like the ECE itself it leans upwards on small sets, so on them
    it can lie above the measured value; read it with ``ece_if_calibrated``."""
    p, y = np.asarray(probabilities, np.float64), np.asarray(labels, np.float64)
    rng = np.random.default_rng(seed)
    draws = [expected_calibration_error(p[k], y[k], bins) for k in rng.integers(0, len(p), (resamples, len(p)))]
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def ece_if_calibrated(probabilities: np.ndarray, bins: int = 10, resamples: int = 1000, seed: int = 0) -> float:
    """The mean ECE a perfectly calibrated model with these predictions would show on this many samples (labels
    drawn as Bernoulli(p): consistency resampling, Bröcker & Smith 2007): the ECE that sampling noise alone
    gives. ECE is biased upwards on small sets; a measured ECE near this level says the set is too small to see
    any miscalibration."""
    p = np.asarray(probabilities, np.float64)
    rng = np.random.default_rng(seed)
    return float(np.mean([expected_calibration_error(p, rng.random(len(p)) < p, bins) for _ in range(resamples)]))


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold chosen for a target false-positive rate: the rate met on the data (``fpr``), the true-positive
    rate there and its bootstrap interval (``tpr_low``..``tpr_high``, 95 %), and the data's size."""

    target_fpr: float
    threshold: float
    fpr: float
    tpr: float
    tpr_low: float
    tpr_high: float
    reals: int
    fakes: int


def threshold_for_fpr(real_scores: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold ``t`` (a video is flagged when its score is ≥ t) whose false-positive rate on
    ``real_scores`` is at most ``target_fpr``: just above the real score that would otherwise be one too many."""
    reals = np.sort(np.asarray(real_scores, np.float64))[::-1]
    allowed = int(np.floor(target_fpr * len(reals) + 1e-9))  # real videos that may be flagged
    if allowed >= len(reals):
        return float(reals[-1])
    return float(np.nextafter(reals[allowed], np.inf))


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, target_fpr: float) -> float:
    """The true-positive rate at ``threshold_for_fpr`` of the real videos' scores."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, int)
    return float((scores[labels == 1] >= threshold_for_fpr(scores[labels == 0], target_fpr)).mean())


def operating_point(scores: np.ndarray, labels: np.ndarray, target_fpr: float, resamples: int = 1000,
                    seed: int = 0) -> OperatingPoint:
    """The threshold meeting ``target_fpr`` on the real videos of ``scores``, the TPR there, and a 95 %
    bootstrap interval of that TPR (videos resampled with replacement within each class, the threshold chosen
    again in each resample, so the interval holds the threshold's own uncertainty too)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, int)
    real, fake = scores[labels == 0], scores[labels == 1]
    if not len(real) or not len(fake):
        raise ValueError("an operating point needs real and fake videos")
    threshold = threshold_for_fpr(real, target_fpr)
    rng = np.random.default_rng(seed)
    tprs = []
    for _ in range(resamples):
        r, f = rng.choice(real, len(real)), rng.choice(fake, len(fake))
        tprs.append(float((f >= threshold_for_fpr(r, target_fpr)).mean()))
    low, high = np.percentile(tprs, [2.5, 97.5])
    return OperatingPoint(target_fpr, threshold, float((real >= threshold).mean()), float((fake >= threshold).mean()),
                          float(low), float(high), len(real), len(fake))


def threshold_for_fnr(fake_scores: np.ndarray, target_fnr: float) -> float:
    """The highest threshold ``t`` (a video is called real when its score is ≤ t) that calls at most
    ``target_fnr`` of ``fake_scores`` real: ``threshold_for_fpr`` on the negated scores."""
    return -threshold_for_fpr(-np.asarray(fake_scores, np.float64), target_fnr)
