"""``dfguard demo`` / ``make demo``: the main job on one CPU machine, ending in a report a person reads in 30 s.

Synthetic data set → prepare → train the ``tiny`` preset on two families → calibrate on the validation split →
evaluate on the test split (seen and held-out families; ROC, histogram, reliability pictures) → export with the
calibration into a model repository → serve the ``deepfake_video`` ensemble (CPU variant) in a real tritonserver
and batch-score the test videos and a video of two people, one forged, over gRPC → explain that video.

A rerun reuses what is built (videos, prepared crops, the trained model, the model repository) and serves and
reports again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dfguard.answer import Face
from dfguard.client.results import Record
from dfguard.inference.spec import CalibratedScores
from dfguard.scoring import VERDICTS

if TYPE_CHECKING:
    from .calibrate import CalibrationReport

# the families the demo (and the tests' tiny model) trains on, and those it holds out as unseen
SEEN, UNSEEN = ("nearest", "transposed_conv"), ("bilinear", "pixel_shuffle")
STEPS = 8
VIDEOS_PER_CLASS = 32  # real videos, and fakes per family: 6 real and 24 fake videos to calibrate on
SCORING_CONCURRENCY = 4
FAKE_FPR = 0.01  # the fake verdict's operating point: false positives on real validation videos


def step(number: int, text: str) -> None:
    """Print the heading of one of the demo's steps."""
    print(f"{number}/{STEPS} {text}", flush=True)


@dataclass(frozen=True)
class Served:
    """What the server answered: the results file, verdict counts, videos/s, the served video AUC per family
    group, and the two-person video's record."""

    results: Path
    verdicts: dict[str, int]
    videos_per_second: float
    auc: dict[str, float]
    two_people: Record


def served_auc(records: list[Record], labels: dict[str, tuple[int, str]]) -> dict[str, float]:
    """Video AUC of the served scores for the seen and for the held-out families: each family's fakes against
    every real video, averaged over the group's families (as the report's other columns are)."""
    from .trainer import auc

    scored = [(*labels[r.path], r.score) for r in records if r.path in labels and r.score is not None]
    per_family = {}
    for family in SEEN + UNSEEN:
        chosen = [(label, score) for label, kind, score in scored if kind == family or label == 0]
        per_family[family] = auc(np.array([s for _, s in chosen]), np.array([y for y, _ in chosen]))
    return {group: float(np.mean([per_family[f] for f in families]))
            for group, families in (("seen", SEEN), ("held out", UNSEEN))}


def score_over_grpc(repository: Path, videos: dict[Path, tuple[int, str]], two_people: Path, out: Path,
                    num_frames: int = 8) -> Served:
    """Start tritonserver on the repository and batch-score ``videos`` (path → label, family) and the two-person
    video over gRPC into ``out`` (a fresh results file, so the speed is this run's)."""
    from dfguard.client.batch import RemoteScorer, score_files
    from dfguard.client.grpc_client import Connection
    from dfguard.client.results import ResultsFile
    from dfguard.serving.server import TritonServer

    out.unlink(missing_ok=True)
    with TritonServer(repository.resolve()) as server:
        scorer = RemoteScorer(Connection(server.grpc_url, timeout=120), num_frames)
        summary = score_files([*videos, two_people], scorer, out, concurrency=SCORING_CONCURRENCY)
    records = ResultsFile(out).read()
    labels = {str(path.resolve()): label for path, label in videos.items()}
    verdicts = {v: sum(r.verdict == v for r in records) for v in VERDICTS}
    verdicts["error"] = sum(r.status == "error" for r in records)
    pair = next(r for r in records if r.path == str(two_people.resolve()))
    return Served(out, verdicts, summary.rate, served_auc(records, labels), pair)


def film_two_people(path: Path, seed: int = 0) -> dict:
    """A 640×360 video of two people from real photos, one forged by a family the model was trained on (faces of
    90-110 px, sizes the demo's 128-px crops hardly resample); returns which person is forged and the boxes."""
    from .scenes import make_people_video
    from .synthetic import VideoSpec

    info = path.with_suffix(".json")
    if not (path.is_file() and info.is_file()):
        spec = VideoSpec(width=640, height=360, frames=40, fps=25, keyframe_interval=25)
        video = make_people_video(path, spec, np.random.default_rng(seed), people=2, family=SEEN[0],
                                  min_face_px=90, max_face_px=110)
        info.write_text(json.dumps({"forged": video.forged, "family": video.family,
                                    "boxes": video.boxes.round(1).tolist()}))
    return json.loads(info.read_text())


def forged_track(faces: Sequence[Face], boxes: list[list[float]], forged: int) -> int | None:
    """The track of the forged person: the one whose face in the video's first frame overlaps its box most
    (``boxes``: the people's face boxes in that frame)."""
    from dfguard.faces.decode import pairwise_iou

    faces = [face for face in faces if face.frame == 0]
    if not faces:
        return None
    overlap = pairwise_iou(np.array([boxes[forged]], np.float32), np.array([f.box for f in faces], np.float32))[0]
    return faces[int(overlap.argmax())].track if overlap.max() > 0.3 else None


def exported_already(spec_file: Path, checkpoint: Path, calibrated: CalibratedScores) -> bool:
    """Whether the repository holds this checkpoint's export with this calibration (a rerun reuses it)."""
    from dfguard.inference.checkpoint import load_model
    from dfguard.inference.spec import read_spec

    if not spec_file.is_file():
        return False
    spec = read_spec(spec_file)
    try:
        load_model(checkpoint).check_spec(spec)  # the same preset, stage, crops and centres
    except ValueError:
        return False
    return (spec.calibration, spec.verdict, spec.operating_points) == (
        calibrated.calibration, calibrated.verdict, calibrated.operating_points)


def report(metrics: dict, served: Served, pair: dict, paths: dict[str, Path], calibration: str,
           fake_at: float) -> str:
    """The demo's closing report (markdown that reads as plain text)."""
    clean = metrics["results"]["clean"]["per_method"]

    def mean_auc(families: tuple[str, ...], level: str) -> float:
        return float(np.mean([clean[f][level]["auc"] for f in families if f in clean]))

    lines = ["# deepfake-guard demo report", "",
             f"Trained on {', '.join(SEEN)}; {', '.join(UNSEEN)} held out. Test split, AUC (mean over families):", "",
             "| families | frame AUC | video AUC | video AUC served over gRPC |", "|---|---:|---:|---:|"]
    for group, families in (("seen", SEEN), ("held out", UNSEEN)):
        lines.append(f"| {group}: {', '.join(families)} | {mean_auc(families, 'frame'):.3f} | "
                     f"{mean_auc(families, 'video'):.3f} | {served.auc[group]:.3f} |")
    counts = ", ".join(f"{n} {v}" for v, n in served.verdicts.items() if n)
    lines += ["", f"Calibration: {calibration}", "",
              f"Served: {sum(served.verdicts.values())} videos over gRPC ({SCORING_CONCURRENCY} in flight): {counts}; "
              f"{served.videos_per_second:.2f} videos/s.", ""]
    record = served.two_people
    tracks = record.tracks or []
    forged = forged_track(record.faces or (), pair["boxes"], pair["forged"])
    score = "none" if record.score is None else f"{record.score:.3f}"
    lines.append(f"Two people, one forged ({pair['family']}, a family it was trained on): verdict {record.verdict}, "
                 f"video P(fake) {score}, {len(tracks)} tracks:")
    for track in tracks:
        who = ("which person is not known" if forged is None else
               "the forged person" if track.id == forged else "the real person")
        side = "at or above" if track.score >= fake_at else "below"
        lines.append(f"- track {track.id} ({who}): P(fake) {track.score:.3f} over {track.faces} faces, "
                     f"frames {track.first_frame}-{track.last_frame}; {side} the fake threshold {fake_at:.3f}")
    lines += ["", "Where everything is:"] + [f"- {name}: {path}" for name, path in paths.items()]
    return "\n".join(lines) + "\n"


def check_built_with(record: Path, parameters: dict) -> None:
    """Refuse to reuse a demo folder built with other parameters (its videos, crops and model would not match);
    a new folder records them."""
    if record.is_file() and (before := json.loads(record.read_text())) != parameters:
        raise ValueError(f"{record.parent} was built with {before}, not {parameters}: pass another --out or remove it")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(parameters))


def train_on_synthetic_videos(out: Path, videos_per_class: int, frames: int, quick: bool) -> tuple[Path, Path]:
    """Steps 1-3: render the data set, prepare it and train the tiny preset on the seen families (each reused
    when already built); returns the manifest and ``best.pt``."""
    from dfguard.faces.settings import CropConfig

    from .config import load_preset
    from .datasets import load_csv
    from .prepare import prepare_dataset
    from .synthetic import VideoSpec, make_dataset
    from .trainer import Trainer

    step(1, f"synthetic videos: real ones from real photos, fakes of four families, into {out / 'videos'}")
    manifest = out / "videos" / "manifest.csv"
    check_built_with(out / "demo.json", {"videos_per_class": videos_per_class, "frames": frames, "quick": quick})
    if manifest.is_file():
        print(f"  already there: {manifest}")
    else:
        make_dataset(out / "videos", families=SEEN + UNSEEN, videos_per_class=videos_per_class,
                     spec=VideoSpec(width=160, height=160, frames=2 * frames))
    step(2, "prepare: frames sampled over each video, BlazeFace, face and part crops")
    prepare_dataset(load_csv(manifest), out / "prepared", frames=frames, config=CropConfig(size=128))
    step(3, f"train the tiny preset on {' and '.join(SEEN)} (stage 1, then the cluster stage)")
    epochs = ("stage1.epochs=1", "stage2.epochs=1") if quick else ()
    best = Trainer(load_preset("tiny", (f"data.methods=[{', '.join(SEEN)}]", *epochs)), out / "prepared",
                   out / "run").run()
    return manifest, best


def calibration_line(calibrated: CalibrationReport, test: dict[str, float]) -> str:
    """The report's sentence on the calibration: what it was fitted on, its ECE (``test``: the test split's video
    metrics), and the verdict threshold it chose."""
    return (f"Platt scaling fitted on {calibrated.reals} real and {calibrated.fakes} fake validation videos "
            f"(ECE {calibrated.ece_before:.3f} before, {calibrated.ece_after:.3f} after; on the test split "
            f"{test['ece']:.3f}, where a perfectly calibrated model would show about {test['ece_if_calibrated']:.3f} "
            f"on {test['reals'] + test['fakes']} videos); verdict fake at P ≥ {calibrated.fitted.verdict.fake_at:.3f}, "
            f"chosen for {FAKE_FPR:.0%} false positives on real validation videos")


def run_demo(out: Path, *, videos_per_class: int = VIDEOS_PER_CLASS, frames: int = 8, quick: bool = False,
             template: Path = Path("model_repository")) -> dict[str, Path]:
    """Run the demo into ``out`` (``template``: the source tree's model repository); print and write the report
    (``report.md``); returns the paths a person would open."""
    from dfguard.explain import explain_video
    from dfguard.inference.spec import read_spec
    from dfguard.pipeline import LocalDetector

    from .calibrate import calibrate
    from .datasets import load_csv
    from .evaluate import evaluate
    from .export import export_repository

    out = Path(out)
    manifest, best = train_on_synthetic_videos(out, videos_per_class, frames, quick)
    step(4, f"calibrate on the validation split: Platt scaling, the fake verdict at {FAKE_FPR:.0%} false positives")
    calibrated = calibrate(best, out / "prepared", out / "calibration", fake_fpr=FAKE_FPR)
    step(5, "evaluate on the test split, seen and held-out families, clean and JPEG 50")
    evaluate(best, out / "prepared", out / "eval", jpeg=(50,), calibration=calibrated.fitted.calibration)
    step(6, "export the ONNX models with the calibration into a model repository (each checked against PyTorch)")
    repository = out / "repository"
    spec_file = repository / "serving_spec.json"
    if exported_already(spec_file, best, calibrated.fitted):
        print(f"  {repository} already holds this model with this calibration")
    else:
        export_repository(best, repository, template=template, calibrated=calibrated.fitted)
    step(7, "serve the deepfake_video ensemble (CPU variant); batch-score the test videos and two people over gRPC")
    pair_video = out / "two_people.mp4"
    pair = film_two_people(pair_video)
    videos = {r.path: (r.label, r.method) for r in load_csv(manifest) if r.split == "test"}
    served = score_over_grpc(repository, videos, pair_video, out / "served" / "results.jsonl")
    step(8, f"explain the two-person video in process: faces, track timeline, DCT view, embeddings ({out / 'explain'})")
    explanation = explain_video(LocalDetector(best, read_spec(spec_file)), pair_video, out / "explain", num_frames=8)
    paths = {"this report": out / "report.md", "ROC curves": out / "eval" / "roc.png",
             "score histogram": out / "eval" / "histogram.png", "reliability diagram": out / "eval" / "reliability.png",
             "metrics": out / "eval" / "metrics.md", "calibration": out / "calibration" / "calibration.md",
             "model": best, "model repository": repository, "served results": served.results,
             **{f"two people, {name}": path for name, path in explanation.pictures.items()},
             "TensorBoard logs": out / "run" / "tensorboard"}
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    line = calibration_line(calibrated, metrics["results"]["clean"]["all"]["video"])
    text = report(metrics, served, pair, paths, line, calibrated.fitted.verdict.fake_at)
    (out / "report.md").write_text(text)
    print(text, end="")
    return paths
