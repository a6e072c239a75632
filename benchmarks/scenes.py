"""Faces in scenes like real uploads: how many each detector finds, how many it invents, and how fast it runs.

    python -m benchmarks.scenes [--scenes 100] [--seed 0] [--rounds 3] [--no-write]
    python -m benchmarks.scenes --filmed [--videos 8] [--seed 0] [--no-write]

Scenes from ``dfguard.train.scenes`` (1-3 people from real photos, 48 px up to half the frame, 360p to 4K, a
quarter grayscale, up to a quarter of a face out of frame); frames without people are the scene backgrounds at
every resolution, uniform noise and a flat grey. A true face counts as found when a detection overlaps it by
IoU ≥ 0.4 (one detection per face). Detectors: ours (ONNX Runtime) on the letterboxed frame, short and full
range, and full range tiled (``dfguard.faces.tiles``, the serving candidate); the front-ends peers use
(``benchmarks.references``): mediapipe's ``FaceDetection`` (TFLite, XNNPACK) short and full range, mediapipe full
range on overlapping tiles, and MTCNN on the frame halved (the DFDC winner's; when facenet-pytorch is installed).
Speed: frames/s at 720p, 1080p and 4K, one frame at a time.

``--filmed``: the face search of a video (``dfguard.faces.search``) on filmed HD videos
(``make_people_video``: 1-3 people of 48 px and up, a camera panning up to a third of the frame's width), 32
frames sampled as the pipeline does, with the fine tiles on every frame and on every 2nd, 4th, 8th
(``DetectorConfig.search_every``): recall over the sampled frames, false detections, detector windows per
frame, seconds per video, and whether the video has one counted track per person.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.references import (
    MTCNN_INSTALL,
    TILE,
    Detector,
    mediapipe_detector,
    mediapipe_tiled,
    mtcnn_detector,
    mtcnn_installed,
)
from benchmarks.results import write_section
from dfguard.faces.detect import detect_whole_image
from dfguard.faces.tiles import MIN_FACE_PX, detect_faces_tiled
from dfguard.faces.weights import DETECTORS
from dfguard.progress import progress_bar
from dfguard.train.scenes import BACKGROUNDS, RESOLUTIONS, background, clip_boxes, make_scene, match

SHORT, FULL = DETECTORS["blazeface_short_range"], DETECTORS["blazeface_full_range"]
SPEED_SIZES = ((1280, 720), (1920, 1080), (3840, 2160))


def detectors() -> dict[str, Detector]:
    """Each detector as ``image → boxes [K, 4]`` in frame pixels: ours, and the front-ends peers use
    (``benchmarks.references``; MTCNN when facenet-pytorch is installed)."""

    def ours(run: Callable[[np.ndarray], list]) -> Detector:
        return lambda image: clip_boxes([d.box for d in run(image)], *image.shape[:2])

    def clipped(run: Detector) -> Detector:
        return lambda image: clip_boxes(run(image), *image.shape[:2])

    runs = {
        "ours, short range, whole frame": ours(lambda image: detect_whole_image(image, kind=SHORT)),
        "ours, full range, whole frame": ours(lambda image: detect_whole_image(image, kind=FULL)),
        f"ours, full range, tiled (min_face_px {MIN_FACE_PX})": ours(lambda image: detect_faces_tiled([image],
                                                                                                      FULL)[0]),
        "mediapipe, short range": clipped(mediapipe_detector(0)),
        "mediapipe, full range": clipped(mediapipe_detector(1)),
        f"mediapipe, full range, whole frame and {TILE}-px tiles": clipped(mediapipe_tiled()),
    }
    if mtcnn_installed():
        runs["MTCNN, frame halved (DFDC winner)"] = clipped(mtcnn_detector())
    else:
        print(f"MTCNN left out: facenet-pytorch is not installed ({MTCNN_INSTALL})")
    return runs


def quality(runs: dict[str, Detector], scenes: int, seed: int) -> str:
    """Recall on scenes and false detections on scenes and on frames without people, as a markdown table."""
    rng = np.random.default_rng(seed)
    found, invented, empty = dict.fromkeys(runs, 0), dict.fromkeys(runs, 0), dict.fromkeys(runs, 0)
    faces = 0
    for _ in progress_bar(range(scenes), desc="scenes"):
        scene = make_scene(rng)
        faces += len(scene.boxes)
        for name, run in runs.items():
            hits, false = match(scene.boxes, run(scene.image))
            found[name] += hits
            invented[name] += false
    frames = [background(b, w, h, rng) for w, h in RESOLUTIONS for b in BACKGROUNDS]
    frames += [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for w, h in RESOLUTIONS]
    frames += [np.full((h, w, 3), 128, np.uint8) for w, h in RESOLUTIONS]
    for frame in progress_bar(frames, desc="frames without people"):
        for name, run in runs.items():
            empty[name] += len(run(frame))
    lines = ["| detector | faces found | recall | false detections in scenes | false detections without people |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {found[name]}/{faces} | {found[name] / faces:.3f} | {invented[name]} | "
              f"{empty[name]} (of {len(frames)} frames) |" for name in runs]
    return "\n".join(lines)


def speed(runs: dict[str, Detector], rounds: int, seed: int) -> str:
    """Frames/s of each detector at each size of ``SPEED_SIZES`` (median of ``rounds`` passes over 8 scenes)."""
    rng = np.random.default_rng(seed)
    lines = ["| detector | " + " | ".join(f"{w}×{h} frames/s" for w, h in SPEED_SIZES) + " |",
             "|---|" + "---:|" * len(SPEED_SIZES)]
    table = {name: [] for name in runs}
    for width, height in progress_bar(SPEED_SIZES, desc="speed"):
        images = [make_scene(rng, width=width, height=height).image for _ in range(8)]
        for name, run in runs.items():
            run(images[0])  # warm-up (ONNX sessions, caches)
            passes = []
            for _ in range(rounds):
                start = time.perf_counter()
                for image in images:
                    run(image)
                passes.append(len(images) / (time.perf_counter() - start))
            table[name].append(float(np.median(passes)))
    lines += [f"| {name} | " + " | ".join(f"{v:.1f}" for v in values) + " |" for name, values in table.items()]
    return "\n".join(lines)


PAN = 1 / 3  # the camera moves up to a third of the frame's width over a video (every face stays inside)
SEARCH_EVERY = (1, 2, 4, 8)
FILMED_SECONDS, FILMED_FPS, SAMPLED = 6, 25, 32


def filmed(videos: int, seed: int, folder: Path, sampled: int = SAMPLED) -> str:
    """The face search with each ``SEARCH_EVERY`` on ``videos`` filmed HD videos, as a markdown table."""
    from dfguard.faces.detect import in_process_detector
    from dfguard.faces.search import find_faces
    from dfguard.faces.settings import DetectorConfig, TrackConfig
    from dfguard.faces.weights import detector_kind
    from dfguard.train.scenes import make_people_video
    from dfguard.train.synthetic import VideoSpec
    from dfguard.video import decode_frames, sample_indices

    rng = np.random.default_rng(seed)
    clips = []
    for k in progress_bar(range(videos), desc="filming"):
        width, height = ((1280, 720), (1920, 1080))[k % 2]
        spec = VideoSpec(width=width, height=height, frames=FILMED_SECONDS * FILMED_FPS, fps=FILMED_FPS, crf=23,
                         keyframe_interval=40)
        video = make_people_video(folder / f"filmed{k}.mp4", spec, rng, pan=int(rng.integers(120, PAN * width)),
                                  min_face_px=48, max_face_px=height / 3)
        indices = sample_indices(spec.frames, sampled)
        clips.append((video, decode_frames(video.path, indices), [video.boxes_at(i, spec.frames) for i in indices]))
    detector = in_process_detector(detector_kind(DetectorConfig().name))
    windows = [0]

    def counted(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        windows[0] += len(inputs)
        return detector(inputs)

    lines = ["| fine tiles on | faces found | recall | false detections | windows per frame | s per video "
             "| videos with one track per person |", "|---|---:|---:|---:|---:|---:|---:|"]
    find_faces(clips[0][1][:2], DetectorConfig(), TrackConfig(), detector)  # warm-up
    for every in progress_bar(SEARCH_EVERY, desc="search_every"):
        hits = false = total = right = 0
        windows[0], seconds = 0, 0.0
        for video, frames, truth in clips:
            start = time.perf_counter()
            found = find_faces(frames, DetectorConfig(search_every=every), TrackConfig(), counted)
            seconds += time.perf_counter() - start
            for k, boxes in enumerate(truth):
                h, f = match(boxes, found.boxes[found.frame == k])
                hits, false, total = hits + h, false + f, total + len(boxes)
            right += int(found.track_counts.sum() == len(video.boxes))
        name = "every sampled frame" if every == 1 else f"every {every}{'nd' if every == 2 else 'th'} sampled frame"
        lines.append(f"| {name} | {hits}/{total} | {hits / total:.3f} | {false} | "
                     f"{windows[0] / (len(clips) * sampled):.1f} | {seconds / len(clips):.2f} | {right}/{len(clips)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure, print and record both tables (or, with ``--filmed``, the filmed videos' table)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--filmed", action="store_true", help="the face search on filmed HD videos instead")
    parser.add_argument("--videos", type=int, default=8, help="filmed videos (with --filmed)")
    args = parser.parse_args(argv)
    if args.filmed:
        with tempfile.TemporaryDirectory() as folder:
            body = filmed(args.videos, args.seed, Path(folder))
        body += (f"\n\n{args.videos} videos (seed {args.seed}), 1280×720 and 1920×1080, {FILMED_SECONDS} s at "
                 f"{FILMED_FPS} fps, H.264, a camera panning from 120 px to a third of the frame's width; {SAMPLED} "
                 "frames sampled; a face is found at IoU ≥ 0.4 with one detection. The detector in ONNX Runtime, "
                 "in this process, default threads.")
        print(body)
        if not args.no_write:
            write_section("faces-filmed", "Faces in filmed HD videos: the fine tiles on every k-th sampled frame",
                          body)
        return 0
    runs = detectors()
    body = (quality(runs, args.scenes, args.seed) + f"\n\n{args.scenes} scenes (seed {args.seed}); a face is found "
            "at IoU ≥ 0.4 with one detection.\n\n" + speed(runs, args.rounds, args.seed)
            + "\n\nOne frame at a time on the CPU (ONNX Runtime and PyTorch with their default threads; mediapipe "
               "TFLite XNNPACK).")
    print(body)
    if not args.no_write:
        write_section("faces-scenes", "Faces in scenes like real uploads (recall, false detections, frames/s)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
