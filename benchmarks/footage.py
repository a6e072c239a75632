"""The face front-end on real footage: the served face search against three references on the same frames.

    python -m benchmarks.footage DIR [--frames 32] [--people NAME=N ...] [--out footage-report] [--no-write]

DIR is a folder of videos (every video file under it: ``dfguard.train.datasets.load_folder``). Each clip's frames
are the ones the service samples (``read_frames``: 32 spread over the video, upright); on those same frames run

* ours: the served face search (``dfguard.faces.search.find_faces`` with the serving defaults; the detector in ONNX
  Runtime in this process, the graph the ensemble's ``face_detector`` serves, so the faces are the served ones),
* mediapipe's ``FaceDetection``, full range and short range, on the whole frame (its own TFLite, score 0.5),
* MTCNN from facenet-pytorch on the frame halved, thresholds 0.85/0.95/0.95: the DFDC winner's face extraction.
  Its wheel carries its weights but pins a torch of 2024: ``pip install requests && pip install --no-deps
  facenet-pytorch==2.6.0``.

A reference face is a box one reference or more finds (the boxes several give one face, IoU ≥ 0.3, are one face);
ours covers it when one of our boxes overlaps one of its boxes at IoU ≥ 0.3. A detection no other front-end
confirms (IoU ≥ 0.3 with none of theirs) is a false detection or a face the others miss: counted for every
front-end, drawn for ours and mediapipe full range in ``OUT/unconfirmed-*.png``, beside the reference faces ours
missed in ``OUT/missed.png``: look at them to tell false detections from faces only one front-end finds.
Tracks: our counted tracks (``TrackConfig.counts``) against the people in the clip (``--people NAME=N``, N a
number or ``several``; a clip not named has one) and its shots (``shot_starts``): a person is one track per shot.

The pictures are cut from the footage: they go to OUT, which must stay out of the repository.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.references import Detector, mediapipe_detector, mtcnn_detector
from benchmarks.results import write_section
from dfguard.faces.decode import pairwise_iou
from dfguard.progress import progress_bar

MATCH_IOU = 0.3
REFERENCES = ("mediapipe full range", "mediapipe short range", "MTCNN, frame halved")
FRONT_ENDS = ("ours", *REFERENCES)
SEVERAL = "several"
DRAWN = ("ours", "mediapipe full range")  # the front-ends whose unconfirmed detections are drawn


def references() -> dict[str, Detector]:
    """The three reference front-ends, each a frame → boxes function."""
    return dict(zip(REFERENCES, (mediapipe_detector(1), mediapipe_detector(0), mtcnn_detector()), strict=True))


@dataclass
class Tally:
    """What a clip (or all of them) adds up to."""

    reference: int = 0
    covered: int = 0
    detections: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FRONT_ENDS, 0))
    unconfirmed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FRONT_ENDS, 0))
    agreed: int = 0  # reference faces two references or more find
    agreed_covered: int = 0
    missed: list[tuple[str, int, np.ndarray]] = field(default_factory=list)  # (clip, frame, boxes)
    lonely: dict[str, list[tuple[str, int, np.ndarray]]] = field(
        default_factory=lambda: {name: [] for name in DRAWN})  # unconfirmed detections

    def add(self, other: Tally) -> None:
        """Add another tally to this one."""
        self.reference += other.reference
        self.covered += other.covered
        self.agreed += other.agreed
        self.agreed_covered += other.agreed_covered
        for name in FRONT_ENDS:
            self.detections[name] += other.detections[name]
            self.unconfirmed[name] += other.unconfirmed[name]
        self.missed += other.missed
        for name in DRAWN:
            self.lonely[name] += other.lonely[name]


@dataclass
class ClipResult:
    """One clip: what each front-end found per sampled frame, our tracks, and the seconds each took."""

    name: str
    size: tuple[int, int]
    people: str
    boxes: dict[str, list[np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    tracks: int = 0
    shots: int = 0
    error: str | None = None
    counts: Tally = field(default_factory=Tally)
    frames: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # those the pictures need


def measure_clip(path: Path, name: str, people: str, frames: int, refs: dict[str, Detector]) -> ClipResult:
    """Decode the clip's sampled frames and run every front-end on them."""
    from dfguard.faces.detect import in_process_detector
    from dfguard.faces.search import find_faces
    from dfguard.faces.settings import DetectorConfig, TrackConfig
    from dfguard.faces.tracks import shot_starts
    from dfguard.faces.weights import detector_kind
    from dfguard.video import VideoError, read_frames

    start = time.perf_counter()
    try:
        decoded = read_frames(path, frames)
    except VideoError as error:
        return ClipResult(name, (0, 0), people, error=str(error))
    images = list(decoded.images)
    result = ClipResult(name, (images[0].shape[1], images[0].shape[0]), people)
    result.seconds["decode"] = time.perf_counter() - start
    detector, tracks = DetectorConfig(), TrackConfig()
    start = time.perf_counter()
    found = find_faces(images, detector, tracks, in_process_detector(detector_kind(detector.name)))
    result.seconds["ours"] = time.perf_counter() - start
    result.boxes["ours"] = [found.boxes[found.frame == k] for k in range(len(images))]
    result.tracks = int(found.track_counts.sum())
    result.shots = int(shot_starts(images, tracks.min_shot_correlation).sum())
    for reference, run in refs.items():
        start = time.perf_counter()
        result.boxes[reference] = [run(image) for image in images]
        result.seconds[reference] = time.perf_counter() - start
    result.counts = tally(result)
    cases = result.counts.missed + [case for name in DRAWN for case in result.counts.lonely[name]]
    result.frames = {k: images[k] for _, k, _ in cases}
    return result


def overlaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of ``boxes`` overlaps one of ``others`` at IoU ≥ ``MATCH_IOU``."""
    if not len(boxes) or not len(others):
        return np.zeros(len(boxes), bool)
    return (pairwise_iou(boxes, others) >= MATCH_IOU).any(axis=1)


def reference_faces(frame_boxes: dict[str, np.ndarray]) -> list[tuple[np.ndarray, int]]:
    """One frame's reference faces: the references' boxes grouped so that boxes overlapping at IoU ≥
    ``MATCH_IOU`` are one face; each face as the ``[B, 4]`` boxes that saw it and how many references did."""
    faces: list[list[tuple[str, np.ndarray]]] = []
    for name in REFERENCES:
        for box in frame_boxes[name]:
            home = next((face for face in faces if overlaps(box[None], np.stack([b for _, b in face]))[0]), None)
            if home is None:
                faces.append([(name, box)])
            else:
                home.append((name, box))
    return [(np.stack([b for _, b in face]), len({name for name, _ in face})) for face in faces]


def tally(clip: ClipResult) -> Tally:
    """Coverage of the reference faces and unconfirmed detections of every front-end, over a clip's frames."""
    total = Tally()
    for k in range(len(clip.boxes["ours"])):
        boxes = {name: clip.boxes[name][k] for name in FRONT_ENDS}
        for face, seen_by in reference_faces(boxes):
            found = bool(overlaps(face, boxes["ours"]).any())
            total.reference += 1
            total.covered += found
            total.agreed += seen_by >= 2
            total.agreed_covered += found and seen_by >= 2
            if not found:
                total.missed.append((clip.name, k, face))
        for name in FRONT_ENDS:
            others = [boxes[other] for other in FRONT_ENDS if other != name]
            confirmed = overlaps(boxes[name], np.concatenate(others))
            total.detections[name] += len(boxes[name])
            total.unconfirmed[name] += int((~confirmed).sum())
            if name in DRAWN:
                total.lonely[name] += [(clip.name, k, box[None]) for box in boxes[name][~confirmed]]
    return total


def one_track_per_shot(clip: ClipResult) -> bool | None:
    """Whether a one-person clip gives one counted track per shot (None for other clips)."""
    return clip.tracks == clip.shots if clip.people == "1" else None


def clip_table(clips: list[ClipResult]) -> str:
    """The per-clip markdown table."""
    lines = ["| clip | size | people | shots | our tracks | reference faces | ours covers | ours unconfirmed | "
             "mediapipe full unconfirmed | s ours | s decode |", "|---|---|" + "---:|" * 9]
    for clip in clips:
        if clip.error:
            lines.append(f"| {clip.name} | error: {clip.error} | {clip.people} |  |  |  |  |  |  |  |  |")
            continue
        t = clip.counts
        lines.append(f"| {clip.name} | {clip.size[0]}×{clip.size[1]} | {clip.people} | {clip.shots} | {clip.tracks} "
                     f"| {t.reference} | {t.covered} | {t.unconfirmed['ours']} | "
                     f"{t.unconfirmed['mediapipe full range']} | {clip.seconds['ours']:.2f} | "
                     f"{clip.seconds['decode']:.2f} |")
    return "\n".join(lines)


def summary(clips: list[ClipResult]) -> tuple[str, Tally]:
    """The totals: coverage, unconfirmed detections per front-end, tracks of one-person clips, errors, time."""
    total = Tally()
    for clip in clips:
        total.add(clip.counts)
    ok = [c for c in clips if not c.error]
    single = [c for c in ok if c.people == "1"]
    one = [c for c in single if c.tracks == 1]
    per_shot = [c for c in single if one_track_per_shot(c)]
    coverage = total.covered / max(total.reference, 1)
    agreed = total.agreed_covered / max(total.agreed, 1)
    lines = [f"- **Ours covers {total.covered} of the {total.reference} reference faces ({coverage:.1%})**, "
             f"IoU ≥ {MATCH_IOU}; of the {total.agreed} that two references or more find, {total.agreed_covered} "
             f"({agreed:.1%}).",
             f"- One-person clips with **one counted track: {len(one)} of {len(single)} "
             f"({len(one) / max(len(single), 1):.0%})**; one counted track per shot: {len(per_shot)} of {len(single)}.",
             f"- Errors: {sum(bool(c.error) for c in clips)} of {len(clips)} clips.",
             "", "| front-end | detections | unconfirmed by the others | s per clip |", "|---|---:|---:|---:|"]
    for name in FRONT_ENDS:
        seconds = np.mean([c.seconds[name] for c in ok]) if ok else float("nan")
        lines.append(f"| {name} | {total.detections[name]} | {total.unconfirmed[name]} | {seconds:.2f} |")
    decode = np.mean([c.seconds["decode"] for c in ok]) if ok else float("nan")
    lines.append(f"| (decoding the sampled frames) |  |  | {decode:.2f} |")
    return "\n".join(lines), total


def draw_sheet(cases: list[tuple[str, int, np.ndarray]], frames: dict[str, dict[int, np.ndarray]], path: Path,
               title: str, colour: str, limit: int = 60) -> int:
    """A contact sheet of up to ``limit`` cases (clip, frame, boxes): each case's surroundings with its boxes;
    returns how many were drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    shown = cases[:limit]
    columns = 6
    rows = max(1, -(-len(shown) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows + 0.6), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (clip, k, boxes) in zip(axes.flat, shown, strict=False):
        frame = frames[clip][k]
        height, width = frame.shape[:2]
        centre = (boxes[:, :2] + boxes[:, 2:]).mean(axis=0) / 2
        side = max(3 * float((boxes[:, 2:] - boxes[:, :2]).max()), 96.0)
        x0, y0 = int(max(centre[0] - side / 2, 0)), int(max(centre[1] - side / 2, 0))
        x1, y1 = int(min(centre[0] + side / 2, width)), int(min(centre[1] + side / 2, height))
        axis.imshow(frame[y0:y1, x0:x1], extent=(x0, x1, y1, y0))
        for box in boxes:
            axis.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False, lw=1.5,
                                     edgecolor=colour))
        axis.set_title(f"{clip[:26]}\nframe {k}, {width}×{height}", fontsize=7)
    figure.suptitle(f"{title} ({len(shown)} of {len(cases)})", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return len(shown)


def parse_people(items: list[str]) -> dict[str, str]:
    """``NAME=N`` options as {clip file name: N or 'several'}."""
    people = {}
    for item in items:
        name, _, count = item.partition("=")
        if not name or not (count.isdigit() or count == SEVERAL):
            raise SystemExit(f"--people takes NAME=N (N a number or {SEVERAL}), got {item!r}")
        people[name] = count
    return people


def main(argv: list[str] | None = None) -> int:
    """Measure every clip of the folder, print and record the tables, draw the contact sheets."""
    from dfguard.train.datasets import load_folder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of videos (searched recursively)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per clip, as the service does")
    parser.add_argument("--people", action="append", default=[], metavar="NAME=N",
                        help=f"people in a clip (a number, or {SEVERAL}); 1 for a clip not named")
    parser.add_argument("--out", type=Path, default=Path("footage-report"), help="folder for the contact sheets "
                        "(pictures of the footage: keep it out of the repository)")
    parser.add_argument("--limit", type=int, help="only the first N clips (a quick look)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    people = parse_people(args.people)
    records = load_folder(args.folder)[: args.limit]
    refs = references()
    clips = []
    for record in progress_bar(records, desc="clips", unit="clip"):
        name = Path(record.video_id).name
        clips.append(measure_clip(record.path, name, people.get(name, "1"), args.frames, refs))
    totals, total = summary(clips)
    frames = {c.name: c.frames for c in clips if not c.error}
    drawn_missed = draw_sheet(total.missed, frames, args.out / "missed.png", "reference faces ours missed", "red")
    drawn_lonely = [draw_sheet(total.lonely[name], frames, args.out / f"unconfirmed-{name.replace(' ', '-')}.png",
                               f"{name}: detections no other front-end confirms", "lime") for name in DRAWN]
    body = (f"{totals}\n\n{len(clips)} clips of `{args.folder.name}/`, {args.frames} frames sampled from each as the "
            "service samples them. References on the same frames: mediapipe FaceDetection (TFLite, XNNPACK) full "
            "and short range, whole frame, score 0.5; MTCNN (facenet-pytorch 2.6.0) on the frame halved, "
            "thresholds 0.85/0.95/0.95. Ours: the served search (full range, tiles on key frames, zoomed-out "
            "window), in process. Seconds are per clip, one process, default threads.\n\n"
            f"{clip_table(clips)}")
    print(body)
    print(f"drew {drawn_missed} missed and {sum(drawn_lonely)} unconfirmed cases in {args.out}")
    if not args.no_write:
        write_section("faces-footage", "Faces in real footage: the served search against three references", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
