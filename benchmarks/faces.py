"""Face detection + crops: frames/s of our batched pipeline next to mediapipe's own detector, same frames, same run.

    python -m benchmarks.faces [--frames 32] [--rounds 5] [--no-write]

Frames are 640×360 and 1280×720 RGB with a real face (matplotlib's Grace Hopper) pasted at a different place
in each frame. Ours: ``extract_faces`` (letterbox, one BlazeFace call for the whole batch, decoding, weighted
NMS, face and part crops) and ``detect_whole_images`` (the same without crops). mediapipe:
``FaceDetection.process`` frame by frame (its API takes one image). Medians of interleaved rounds.
"""

from __future__ import annotations

import argparse

import matplotlib.cbook
import numpy as np
from PIL import Image

from benchmarks.results import calls_for, seconds_per_call, write_section
from dfguard.faces.crops import extract_faces
from dfguard.faces.detect import detect_whole_images
from dfguard.progress import progress_bar

SIZES = ((640, 360), (1280, 720))
ROUND_SECONDS = 0.5


def synthetic_frames(width: int, height: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` frames of ``width × height`` with the portrait pasted at random places over a noisy background."""
    photo = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    face_height = int(height * 0.8)
    portrait = np.asarray(photo.resize((face_height * photo.width // photo.height, face_height)))
    frames = []
    for _ in range(count):
        frame = rng.integers(40, 80, (height, width, 3), dtype=np.uint8)
        x = rng.integers(0, width - portrait.shape[1])
        y = rng.integers(0, height - portrait.shape[0])
        frame[y:y + portrait.shape[0], x:x + portrait.shape[1]] = portrait
        frames.append(frame)
    return frames


def measure(cases: dict[str, callable], rounds: int) -> dict[str, float]:
    """Median seconds per call of each case over interleaved rounds."""
    calls = {name: calls_for(fn, ROUND_SECONDS) for name, fn in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            samples[name].append(seconds_per_call(fn, calls[name]))
    return {name: float(np.median(times)) for name, times in samples.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and record it in RESULTS.md."""
    import mediapipe as mp

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32, help="frames per batch (one video's worth)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    lines = ["| frame size | pipeline | frames/s | × mediapipe | faces found |", "|---|---|---:|---:|---:|"]
    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as reference:
        for width, height in progress_bar(SIZES, desc="frame sizes"):
            frames = synthetic_frames(width, height, args.frames, rng)
            found = {
                "ours: detect + crops (batched)": int(extract_faces(frames).found.sum()),
                "ours: detect only (batched)": sum(bool(d) for d in detect_whole_images(frames)),
                "mediapipe FaceDetection (per frame)": sum(bool(reference.process(f).detections) for f in frames),
            }
            timing = measure({
                "ours: detect + crops (batched)": lambda f=frames: extract_faces(f),
                "ours: detect only (batched)": lambda f=frames: detect_whole_images(f),
                "mediapipe FaceDetection (per frame)": lambda f=frames: [reference.process(x) for x in f],
            }, args.rounds)
            baseline = timing["mediapipe FaceDetection (per frame)"]
            for name, seconds in timing.items():
                lines.append(f"| {width}×{height} | {name} | {args.frames / seconds:,.0f} | {baseline / seconds:.2f} "
                             f"| {found[name]}/{args.frames} |")
    body = "\n".join(lines) + (f"\n\nBatches of {args.frames} frames. Ours runs the exported detector in ONNX "
                               "Runtime (CPU); mediapipe runs TFLite with its XNNPACK delegate.")
    print(body)
    if not args.no_write:
        write_section("faces-cpu", "Face detection + crops (BlazeFace short-range)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
