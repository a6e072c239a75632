"""``dfguard eval``: the papers' metrics for a trained model, per manipulation method and under degradations.

Face (frame) AUC; video AUC (the served rule, ``dfguard.scoring.aggregate_faces``: the highest mean score among
a video's tracks that count; videos where none counts are left out and counted as ``no_track``); EER, AP,
ACC@0.5. ``per_method`` scores each
manipulation against the real videos of the same split. Degradations (JPEG quality, Gaussian blur) are applied
to the face crops before the model, as the papers' robustness sweeps do. Writes ``metrics.json``, a markdown
table and pictures: ROC curves of the families the model was trained on and of the held-out ones, a histogram of
video scores for real and fake videos, and with a calibration its reliability diagram on the evaluated split.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torch.utils.data import DataLoader

from dfguard.calibration import Calibration, ece_if_calibrated, ece_interval, expected_calibration_error, tpr_at_fpr
from dfguard.config import to_dict
from dfguard.inference.checkpoint import TrainedModel, load_model
from dfguard.scoring import aggregate_faces
from dfguard.verdicts import REPORTED_FPRS

from .augment import degrade_blur, degrade_jpeg
from .data import FrameDataset
from .plots import RocInputs, plot_histogram, plot_reliability, plot_roc
from .self_blend import SelfBlendedFrames
from .trainer import predict


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where false positives and false negatives are equally frequent."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    k = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[k] + fnr[k]) / 2)




def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC, EER, AP, accuracy at 0.5 and TPR at the ``REPORTED_FPRS`` (NaN where a class is missing; at FPR
    0.1 % with fewer than 1000 real videos, that is the TPR with no real video flagged)."""
    nan = float("nan")
    counts = {"n": len(labels), "reals": int((labels == 0).sum()), "fakes": int((labels == 1).sum())}
    at = {f"tpr@fpr{fpr:g}": nan for fpr in REPORTED_FPRS}
    if len(set(labels.tolist())) < 2:
        accuracy = float(((scores >= 0.5) == labels).mean()) if len(labels) else nan
        return {"auc": nan, "eer": nan, "ap": nan, "acc": accuracy, **at, **counts}
    at = {f"tpr@fpr{fpr:g}": tpr_at_fpr(scores, labels, fpr) for fpr in REPORTED_FPRS}
    return {"auc": float(roc_auc_score(labels, scores)), "eer": equal_error_rate(labels, scores),
            "ap": float(average_precision_score(labels, scores)), "acc": float(((scores >= 0.5) == labels).mean()),
            **at, **counts}


@dataclass(frozen=True)
class Scored:
    """Face scores with what they belong to: video, method, sampled frame and track; ``tracks[video]`` is
    ``(frames sampled, track_counts)`` of each video."""

    scores: np.ndarray
    labels: np.ndarray
    videos: list[str]
    methods: list[str]
    frames: np.ndarray
    track_ids: np.ndarray
    tracks: dict[str, tuple[int, np.ndarray]]

    def by_video(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Per video with a track that counts: the served video score, label, method."""
        rows = self.per_video()
        return (np.array([score for _, score, _, _ in rows]), np.array([label for _, _, label, _ in rows], int),
                [method for _, _, _, method in rows])

    def per_video(self) -> list[tuple[str, float, int, str]]:
        """(video id, served video score, label, method) of each video with a track that counts, by id."""
        rows: dict[str, list[int]] = {v: [] for v in sorted(set(self.videos))}
        for k, video in enumerate(self.videos):
            rows[video].append(k)
        out = []
        for video, members in rows.items():
            k = np.array(members)
            frames, counts = self.tracks[video]
            result = aggregate_faces(self.scores[k], self.frames[k], self.track_ids[k], frames, counts)
            if not np.isnan(result.video_score):
                out.append((video, result.video_score, int(self.labels[k[0]]), self.methods[k[0]]))
        return out

    def metrics(self, calibration: Calibration = Calibration()) -> dict[str, dict[str, float]]:
        """Face and video metrics (``video`` also says how many videos had no track that counts, and, for a
        fitted ``calibration``, its expected calibration error on these videos)."""
        scores, video_labels, _ = self.by_video()
        video = binary_metrics(video_labels, scores) | {"no_track": len(set(self.videos)) - len(scores)}
        if not calibration.identity and len(scores):
            probabilities = calibration.apply(scores)
            video["ece"] = expected_calibration_error(probabilities, video_labels)
            video["ece_low"], video["ece_high"] = ece_interval(probabilities, video_labels)
            video["ece_if_calibrated"] = ece_if_calibrated(probabilities)
        return {"frame": binary_metrics(self.labels, self.scores), "video": video}

    def subset(self, keep: np.ndarray) -> Scored:
        return Scored(self.scores[keep], self.labels[keep], [v for v, k in zip(self.videos, keep, strict=True) if k],
                      [m for m, k in zip(self.methods, keep, strict=True) if k], self.frames[keep],
                      self.track_ids[keep], self.tracks)


SELF_BLEND = "self-blend"  # the method of the self-blended copies of a split's real videos
BLENDED = "#self-blend"  # appended to a real video's id for its self-blended copy


class SplitScorer:
    """Scores every face of one split of a prepared folder with a trained model, under a degradation or none.
    ``self_blend``: beside each real video, its self-blended copy (every face blended, the same draw every time,
    ``seed``), a fake video of method ``self-blend``: how a split of real videos alone is evaluated."""

    def __init__(self, trained: TrainedModel, prepared: Path, split: str, workers: int = 0, *,
                 self_blend: bool = False, seed: int = 0) -> None:
        self.trained = trained
        self.frames = FrameDataset(prepared, split, cutoff=trained.spec().cutoff)
        if self_blend:
            self.dataset = SelfBlendedFrames(self.frames, keep_fakes=True, fixed=True, seed=seed)
            items = self.dataset.items  # (face row, self-blended?) of each sample, in the loader's order
        else:
            self.dataset, items = self.frames, [(row, False) for row in range(len(self.frames))]
        records, faces = self.frames.videos, [self.frames.frames[row] for row, _ in items]
        self.methods = [SELF_BLEND if blended else records[face.video].method
                        for face, (_, blended) in zip(faces, items, strict=True)]
        self.video_ids = [records[face.video].video_id + (BLENDED if blended else "")
                          for face, (_, blended) in zip(faces, items, strict=True)]
        self.labels = np.asarray(self.dataset.labels, int)
        self.face_frames = np.array([face.frame for face in faces])
        self.face_tracks = np.array([face.track for face in faces])
        self.tracks = {record.video_id: (record.frames, self.frames.track_counts(v))
                       for v, record in enumerate(records)}
        self.tracks |= {video + BLENDED: self.tracks[video] for video in list(self.tracks) if self_blend}
        self.loader = DataLoader(self.dataset, batch_size=32, num_workers=workers)

    def score(self, degrade: Callable | None = None, progress: bool = True, desc: str = "clean") -> Scored:
        """Raw face scores of the split, with what each belongs to."""
        model = self.trained.model
        self.frames.degrade = degrade
        scores, _, _ = predict(model, self.loader, next(model.parameters()).device, self.trained.stage, progress,
                               desc=desc)
        return Scored(scores, self.labels, self.video_ids, self.methods, self.face_frames, self.face_tracks,
                      self.tracks)


def evaluate(checkpoint: Path, prepared: Path, out: Path, *, split: str = "test", jpeg: tuple[int, ...] = (),
             blur: tuple[float, ...] = (), workers: int = 0, progress: bool = True,
             calibration: Calibration = Calibration(), self_blend: bool = False) -> dict:
    """Score ``split`` of a prepared folder with ``checkpoint``; write metrics.json, metrics.md and roc.png.
    With a ``calibration`` (``dfguard calibrate``), the video metrics include its calibration error there;
    ``self_blend``: the split's real videos have their self-blended copies as fakes (``SplitScorer``)."""
    trained = load_model(checkpoint)
    spec = trained.spec()
    scorer = SplitScorer(trained, prepared, split, workers, self_blend=self_blend)
    conditions: dict[str, Callable | None] = {"clean": None}
    conditions |= {f"jpeg{q}": degrade_jpeg(q) for q in jpeg} | {f"blur{s:g}": degrade_blur(s) for s in blur}
    results, clean, methods = {}, None, scorer.methods
    for name, degrade in conditions.items():
        scored = scorer.score(degrade, progress, desc=name)
        clean = clean or scored
        per_method = {m: scored.subset(np.array([x in ("real", m) for x in methods])).metrics(calibration)
                      for m in sorted(set(methods) - {"real"})}
        results[name] = {"all": scored.metrics(calibration), "per_method": per_method}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"checkpoint": str(checkpoint), "preset": spec.preset,
                                                  "prepared": str(prepared), "split": split, "stage": trained.stage,
                                                  "self_blend": self_blend,
                                                  "calibration": to_dict(calibration), "results": results},
                                                 indent=2))
    (out / "metrics.md").write_text(markdown_table(spec.preset, results))
    title = f"{spec.preset} on {Path(prepared).name}/{split}"
    seen = training_families(checkpoint)
    curves = {}
    for group, subset in family_groups(clean, seen).items():
        video_scores, video_labels, _ = subset.by_video()
        curves[group] = RocInputs(video_labels, video_scores, subset.labels, subset.scores)
    plot_roc(curves, out / "roc.png", title=title)
    scores, labels, methods = clean.by_video()
    plot_histogram(calibration.apply(scores), labels, methods, out / "histogram.png", title=title, seen=seen,
                   calibrated=not calibration.identity)
    if not calibration.identity:
        plot_reliability(scores, calibration.apply(scores), labels, out / "reliability.png",
                         title=f"reliability on {Path(prepared).name}/{split}")
    return results


def markdown_table(preset: str, results: dict) -> str:
    """Rows = model/condition, columns = manipulation methods (video AUC, the served rule), as in the papers."""
    methods = sorted(results["clean"]["per_method"])
    lines = ["| model | condition | " + " | ".join(methods) + " | all (video AUC) | all (frame AUC) |",
             "|---|---|" + "---:|" * (len(methods) + 2)]
    for condition, result in results.items():
        cells = [f"{result['per_method'][m]['video']['auc']:.3f}" for m in methods]
        lines.append(f"| {preset} | {condition} | " + " | ".join(cells)
                     + f" | {result['all']['video']['auc']:.3f} | {result['all']['frame']['auc']:.3f} |")
    keys = [f"tpr@fpr{fpr:g}" for fpr in REPORTED_FPRS]
    lines += ["", "Videos flagged (TPR) at a false-positive rate on real videos of " + ", ".join(
        f"{fpr:.1%}" for fpr in REPORTED_FPRS) + " (clean):", "",
        "| methods | real videos | fake videos | " + " | ".join(keys) + " |", "|---|---:|---:|" + "---:|" * len(keys)]
    clean = results["clean"]
    for name, metrics in [("all", clean["all"]), *clean["per_method"].items()]:
        video = metrics["video"]
        cells = " | ".join(f"{video[key]:.3f}" for key in keys)
        lines.append(f"| {name} | {video.get('reals', '')} | {video.get('fakes', '')} | {cells} |")
    if "ece" in clean["all"]["video"]:
        lines += ["", "Calibration error of the video probabilities (ECE, 10 bins; clean), with a 95 % bootstrap "
                  "interval and the ECE a perfectly calibrated model would show on as many videos:", "",
                  "| methods | videos | ECE | 95 % interval | if calibrated |", "|---|---:|---:|---|---:|"]
        for name, metrics in [("all", clean["all"]), *clean["per_method"].items()]:
            video = metrics["video"]
            lines.append(f"| {name} | {video['reals'] + video['fakes']} | {video['ece']:.3f} | "
                         f"{video['ece_low']:.3f}–{video['ece_high']:.3f} | {video['ece_if_calibrated']:.3f} |")
    return "\n".join(lines) + "\n"


def training_families(checkpoint: Path) -> tuple[str, ...] | None:
    """The fake families the run trained on (its ``config.json`` beside the checkpoint), ``self-blend`` among them
    when it made its own (``--fakes self-blend`` or ``both``); None when unknown or every family of its data."""
    config = Path(checkpoint).parent / "config.json"
    if not config.is_file():
        return None
    data = json.loads(config.read_text()).get("data", {})
    if data.get("fakes") == "self-blend":
        return (SELF_BLEND,)
    methods = tuple(data.get("methods") or ())
    if data.get("fakes") == "both":
        return (*methods, SELF_BLEND) if methods else None
    return methods or None


def family_groups(scored: Scored, seen: tuple[str, ...] | None) -> dict[str, Scored]:
    """The real videos with the fakes of the families trained on (``seen``) and, apart, with the held-out ones;
    all together when ``seen`` is None."""
    if seen is None:
        return {"all families": scored}
    methods, real = np.array(scored.methods), scored.labels == 0
    groups = {"seen families": ~real & np.isin(methods, seen), "held-out families": ~real & ~np.isin(methods, seen)}
    return {name: scored.subset(fakes | real) for name, fakes in groups.items() if fakes.any()}


def summary_table(rows: dict[str, dict[str, float]], metric: str = "video AUC") -> str:
    """The papers' layout: one row per model or preset, one column per test set (e.g. a data set or a
    manipulation method), cells = ``metric``; NaN cells print as ``—``."""
    columns = list(dict.fromkeys(column for row in rows.values() for column in row))
    lines = [f"| model ({metric}) | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, row in rows.items():
        cells = ["—" if np.isnan(row.get(c, float("nan"))) else f"{row[c]:.3f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summarize(metrics_files: list[Path], metric: str = "video") -> str:
    """The papers' table from several ``metrics.json`` (one per model × data set): rows = presets (or
    checkpoints), columns = data sets (the prepared folder's name and split), cells = clean AUC of ``metric``."""
    rows: dict[str, dict[str, float]] = {}
    for path in metrics_files:
        data = json.loads(Path(path).read_text())
        row = data.get("preset") or Path(data["checkpoint"]).parent.name
        column = f"{Path(data['prepared']).name}/{data['split']}"
        rows.setdefault(row, {})[column] = data["results"]["clean"]["all"][metric]["auc"]
    return summary_table(rows, {"video": "video AUC", "frame": "face AUC"}.get(metric, metric))
