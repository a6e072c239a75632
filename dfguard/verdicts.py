"""A calibration and verdict thresholds fitted from raw video scores and labels: what ``dfguard calibrate`` fits on a
validation split (``dfguard.train.calibrate``) and on moderators' decisions about served videos
(``dfguard calibrate --labels``, ``dfguard.review``).

The scores fit Platt scaling (``dfguard.calibration``); operating points are chosen on the calibrated scores (for each
target false-positive rate on real videos, the threshold and the TPR there with a bootstrap interval); the verdict is
``fake`` at the operating point of ``fake_fpr`` and ``real`` at or below the score under which at most ``real_fnr`` of
the fakes fall, ``uncertain`` between.
"""

from __future__ import annotations

import numpy as np

from dfguard.calibration import (
    Calibration,
    OperatingPoint,
    fit_platt,
    for_fake_rate,
    operating_point,
    threshold_for_fnr,
)
from dfguard.inference.spec import CalibratedScores
from dfguard.scoring import VerdictThresholds

REPORTED_FPRS = (0.1, 0.01, 0.001)  # the operating points every report lists: TPR at FPR 10 %, 1 %, 0.1 %


def verdict_thresholds(scores: np.ndarray, labels: np.ndarray, fake_point: OperatingPoint, real_fnr: float
                       ) -> VerdictThresholds:
    """``fake`` from the chosen operating point, ``real`` where at most ``real_fnr`` of the fakes fall; when
    the two cross (a weak model), there is no uncertain band: both at the fake threshold."""
    real_at = threshold_for_fnr(scores[labels == 1], real_fnr)
    fake_at = min(max(fake_point.threshold, 0.0), 1.0)
    return VerdictThresholds(fake_at=fake_at, real_at=float(np.clip(min(real_at, fake_at), 0.0, 1.0)))


def fit_verdicts(raw: np.ndarray, labels: np.ndarray, source: str, *, fake_fpr: float = 0.01, real_fnr: float = 0.05,
                 target_fprs: tuple[float, ...] = REPORTED_FPRS, fake_rate: float | None = None, seed: int = 0
                 ) -> tuple[CalibratedScores, Calibration]:
    """The calibration of ``raw`` scores (1 = fake in ``labels``), moved to ``fake_rate`` when given, and the verdict
    thresholds and operating points on the scores it gives; also the calibration as fitted (before the move)."""
    fitted = fit_platt(raw, labels, fitted_on=source)
    fakes = int(np.sum(labels == 1))
    calibration = fitted if fake_rate is None else for_fake_rate(fitted, fakes / len(labels), fake_rate)
    in_use = calibration.apply(raw)  # thresholds on the scores the server will answer
    targets = tuple(sorted(set(target_fprs) | {fake_fpr}, reverse=True))
    points = tuple(operating_point(in_use, labels, fpr, seed=seed) for fpr in targets)
    fake_point = next(p for p in points if p.target_fpr == fake_fpr)
    return CalibratedScores(calibration, verdict_thresholds(in_use, labels, fake_point, real_fnr), points), fitted
