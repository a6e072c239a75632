"""``dfguard calibrate``: fit a model's calibration and choose its verdict thresholds on a validation split.

The video scores of the split (the served rule, ``Scored.by_video``) fit the calibration, the operating points
and the verdict thresholds (``dfguard.verdicts``: Platt scaling, ``fake`` where ``fake_fpr`` (1 %) of real videos
are flagged, ``real`` at or below the score under which at most ``real_fnr`` (5 %) of the fakes fall). Writes
``calibration.json`` (what ``dfguard export --calibration`` reads), ``calibration.md`` and a reliability diagram,
``reliability.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dfguard.calibration import expected_calibration_error
from dfguard.inference.checkpoint import load_model
from dfguard.inference.spec import CalibratedScores
from dfguard.verdicts import REPORTED_FPRS, fit_verdicts

from .evaluate import SplitScorer
from .plots import plot_reliability


@dataclass(frozen=True)
class CalibrationReport:
    """What was fitted and how well: the calibrated scores, ECE before and after, and the videos used."""

    fitted: CalibratedScores
    ece_before: float
    ece_after: float
    reals: int
    fakes: int


def calibrate(checkpoint: Path, prepared: Path, out: Path, *, split: str = "val", fake_fpr: float = 0.01,
              real_fnr: float = 0.05, target_fprs: tuple[float, ...] = REPORTED_FPRS, workers: int = 0,
              progress: bool = True, seed: int = 0, fake_rate: float | None = None,
              self_blend: bool = False) -> CalibrationReport:
    """Fit on ``split`` of ``prepared``; write calibration.json, calibration.md and reliability.png to ``out``.
    ``fake_rate``: the share of fakes expected in use, when it differs from the split's (``for_fake_rate``;
    the ECE reported after calibration is then the split's, at its own rate, without the move). ``self_blend``:
    the split's real videos with their self-blended copies as the fakes (all a folder of real videos has: the
    calibration then holds for self-blends, not for forgeries of other kinds)."""
    scored = SplitScorer(load_model(checkpoint), prepared, split, workers, self_blend=self_blend).score(
        progress=progress, desc=split)
    raw, labels, _ = scored.by_video()
    reals, fakes = int((labels == 0).sum()), int((labels == 1).sum())
    kind = "self-blended" if self_blend else "fake"
    source = f"{Path(prepared).name}/{split}: {reals} real and {fakes} {kind} videos"
    result, fitted = fit_verdicts(raw, labels, source, fake_fpr=fake_fpr, real_fnr=real_fnr, target_fprs=target_fprs,
                                  fake_rate=fake_rate, seed=seed)
    calibrated = fitted.apply(raw)
    report = CalibrationReport(result, expected_calibration_error(raw, labels),
                               expected_calibration_error(calibrated, labels), reals, fakes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(result.to_json())
    (out / "calibration.md").write_text(markdown(report))
    plot_reliability(raw, calibrated, labels, out / "reliability.png", title=source)
    return report


def markdown(report: CalibrationReport) -> str:
    """The report: calibration, ECE before and after, verdict thresholds, operating points."""
    c, v = report.fitted.calibration, report.fitted.verdict
    lines = [f"Platt calibration fitted on {c.fitted_on}: P(fake) = sigmoid({c.slope:.3f}·logit(s) "
             f"{c.intercept:+.3f}). Expected calibration error (10 bins) {report.ece_before:.3f} before, "
             f"{report.ece_after:.3f} after.", "",
             f"Verdict: fake at ≥ {v.fake_at:.3f}, real at ≤ {v.real_at:.3f}, uncertain between.", "",
             "| target FPR | threshold | FPR here | TPR | TPR 95 % interval |", "|---:|---:|---:|---:|---|"]
    for p in report.fitted.operating_points:
        lines.append(f"| {p.target_fpr:.1%} | {p.threshold:.4f} | {p.fpr:.1%} | {p.tpr:.3f} | "
                     f"{p.tpr_low:.3f}–{p.tpr_high:.3f} |")
    if report.reals < 1000:
        lines += ["", f"With {report.reals} real videos, an FPR target under {1 / report.reals:.1%} means no real "
                  "video of this split is flagged; the rate itself is not measured that finely."]
    return "\n".join(lines) + "\n"
