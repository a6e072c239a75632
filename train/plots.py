"""The pictures of evaluation and calibration: ROC curves, score histograms, the reliability diagram.

They take plain arrays, so ``train/evaluate.py`` and ``train/calibrate.py`` both draw with them and neither imports
the other back.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from dfguard.calibration import expected_calibration_error, reliability


class RocInputs(NamedTuple):
    """The labels and scores one ROC panel draws: per video (the served video score) and per face."""

    video_labels: np.ndarray
    video_scores: np.ndarray
    face_labels: np.ndarray
    face_scores: np.ndarray


def plot_roc(groups: dict[str, RocInputs], path: Path, title: str) -> None:
    """ROC curves of videos (solid) and faces (dashed) for each group (e.g. the families trained on and the
    held-out ones), with their AUCs; a group with one class only is left out."""
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.subplots()
    for k, (group, inputs) in enumerate(groups.items()):
        for kind, labels, scores, style in (("videos", inputs.video_labels, inputs.video_scores, "-"),
                                            ("faces", inputs.face_labels, inputs.face_scores, "--")):
            if len(set(np.asarray(labels).tolist())) == 2:
                fpr, tpr, _ = roc_curve(labels, scores)
                ax.plot(fpr, tpr, style, color=f"C{k}",
                        label=f"{group}, {kind} (AUC {roc_auc_score(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=9)
    fig.savefig(path, dpi=110)


def plot_histogram(scores: np.ndarray, labels: np.ndarray, methods: list[str], path: Path, title: str,
                   seen: tuple[str, ...] | None = None, calibrated: bool = False) -> None:
    """Histograms of video scores of real videos and of fakes, the families trained on (``seen``) and the held-out
    ones apart; ``calibrated`` says whether the scores are probabilities (the axis label)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    scores, labels, methods = np.asarray(scores), np.asarray(labels), np.array(methods)
    classes = {"real videos": labels == 0}
    if seen is None:
        classes["fake videos"] = labels == 1
    else:
        classes |= {"fakes, seen families": (labels == 1) & np.isin(methods, seen),
                    "fakes, held-out families": (labels == 1) & ~np.isin(methods, seen)}
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    edges = np.linspace(0, 1, 21)
    for (name, chosen), colour in zip(classes.items(), ("tab:green", "tab:red", "tab:orange"), strict=False):
        if chosen.any():
            ax.hist(scores[chosen], bins=edges, histtype="stepfilled", alpha=0.45, color=colour, edgecolor=colour,
                    label=f"{name} ({int(chosen.sum())})")
    ax.set(xlabel="video P(fake)" if calibrated else "video score (uncalibrated)", ylabel="videos", title=title)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=9)
    fig.savefig(path, dpi=110)


def plot_reliability(raw: np.ndarray, calibrated: np.ndarray, labels: np.ndarray, path: Path, title: str,
                     bins: int = 10) -> None:
    """Reliability diagram: observed fake rate against predicted probability, before and after calibration, with
    each bin's count, over the diagonal a perfectly calibrated model follows."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    for name, scores, style in (("raw", raw, "o--"), ("calibrated", calibrated, "s-")):
        mean_p, observed, counts = reliability(scores, labels, bins)
        used = counts > 0
        ece = expected_calibration_error(scores, labels, bins)
        axes[0].plot(mean_p[used], observed[used], style, label=f"{name} (ECE {ece:.3f})")
        axes[1].hist(scores, bins=bins, range=(0, 1), histtype="step", linewidth=1.5, label=name)
    axes[0].plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    axes[0].set(xlabel="predicted P(fake)", ylabel="fraction of fakes", xlim=(0, 1), ylim=(0, 1), title=title)
    axes[0].legend(loc="upper left")
    axes[1].set(xlabel="predicted P(fake)", ylabel="videos", title="scores")
    axes[1].legend()
    for axis in axes:
        axis.grid(alpha=0.3)
    fig.savefig(path, dpi=120)
