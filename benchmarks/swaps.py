"""Face swaps between real clips, each beside its own real clip: a forgery a self-blend-trained model never saw.

A detector trained on self-blends of real faces is checked on its held-out clips' self-blends; this is a check
of another kind, close to the graphics face swaps of FaceForensics++ (FaceSwap): for each target clip and a
source clip of another person, every sampled frame of the target gets the source's face (the source frame's
largest face aligned onto the target's by a similarity transform of eyes, nose and mouth, its colours matched
to the target face's inside the mask, blended through a feathered mask over the inner face). The real side of
each pair is the target's same sampled frames, encoded the same way (H.264, CRF 23), so a pair differs by the
swap alone: compression is no cue. ``pair_accuracy`` is the share of pairs whose swap scores above its own real
clip, the "same-source pairs ranked right" of real benchmarks.

Never commit what this writes: it is cut from the footage.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfguard.faces.detect import Detection, in_process_detector
from dfguard.faces.search import find_faces
from dfguard.faces.settings import DetectorConfig, TrackConfig
from dfguard.faces.weights import detector_kind
from dfguard.progress import progress_bar
from dfguard.train.datasets import VideoRecord, video_group
from dfguard.train.synthetic import VideoSpec, write_video
from dfguard.video import read_frames

ALIGN_KEYPOINTS = [0, 1, 2, 3]  # eyes, nose tip, mouth centre
SWAP_FPS = 8
SWAP_CRF = 23


@dataclass(frozen=True)
class SwapPair:
    """A swap video and the real video of its target, encoded alike."""

    target: str
    source: str
    swap: Path
    real: Path


def largest_faces(frames: Sequence[np.ndarray]) -> list[Detection | None]:
    """The largest face of each frame (found by the served search), or None."""
    detector = DetectorConfig()
    found = find_faces(list(frames), detector, TrackConfig(), in_process_detector(detector_kind(detector.name)))
    largest = found.largest_per_frame()
    faces: list[Detection | None] = [None] * len(frames)
    for frame, face in zip(largest.frame, largest.detections, strict=True):
        faces[int(frame)] = face
    return faces


def inner_face_mask(face: Detection, height: int, width: int) -> np.ndarray:
    """A feathered ellipse over the inner face of ``face`` (brows to chin, cheek to cheek) in frame pixels."""
    points = face.keypoints
    eyes, mouth = points[:2].mean(0), points[3]
    drop = max(float(np.linalg.norm(mouth - eyes)), 1.0)
    down = (mouth - eyes) / drop
    centre = eyes + 0.5 * drop * down
    half_width = max(0.38 * float(np.linalg.norm(points[4] - points[5])), 1.0)
    angle = float(np.degrees(np.arctan2(down[1], down[0]))) - 90
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), (int(half_width), int(1.05 * drop)), angle, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.12 * drop))


def match_colours(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` with the mean and spread of each LAB channel of ``target`` inside ``mask`` (float32 RGB)."""
    inside = mask > 0.5
    if inside.sum() < 16:
        return source.astype(np.float32)
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    tgt = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    out = (src - src[inside].mean(0)) / (src[inside].std(0) + 1e-3) * tgt[inside].std(0) + tgt[inside].mean(0)
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)


def swap_frame(target: np.ndarray, target_face: Detection | None, source: np.ndarray,
               source_face: Detection | None) -> np.ndarray:
    """The target frame with the source's face put in place of its own (unchanged where either has no face)."""
    if target_face is None or source_face is None:
        return target
    matrix, _ = cv2.estimateAffinePartial2D(source_face.keypoints[ALIGN_KEYPOINTS],
                                            target_face.keypoints[ALIGN_KEYPOINTS])
    if matrix is None:
        return target
    height, width = target.shape[:2]
    warped = cv2.warpAffine(source, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = inner_face_mask(target_face, height, width)
    face = match_colours(warped, target, mask)
    blended = mask[..., None] * face + (1 - mask[..., None]) * target.astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def even(frames: np.ndarray) -> np.ndarray:
    """Frames cropped to even sides (H.264 in yuv420p needs them)."""
    return frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]


def make_swaps(records: Sequence[VideoRecord], out: Path, *, frames: int = 32, sources: int = 2,
               progress: bool = True) -> list[SwapPair]:
    """For each clip, ``sources`` swaps from clips of other groups (the next ones in order, round-robin) and its
    own real clip re-encoded alike, written under ``out`` with ``out/manifest.csv`` (path,label,split,method:
    every video in split test, and ``pairs.json``: a rerun reads the pairs from it instead of making them again)."""
    out = Path(out)
    listing = out / "pairs.json"
    if listing.is_file():
        return [SwapPair(p["target"], p["source"], out / p["swap"], out / p["real"])
                for p in json.loads(listing.read_text())]
    decoded = {r.video_id: even(read_frames(r.path, frames).images) for r in records}
    faces = {video: largest_faces(list(images)) for video, images in decoded.items()}
    ids = list(decoded)
    pairs: list[SwapPair] = []
    for k, target in enumerate(progress_bar(ids, desc="face swaps", unit="clip", disable=not progress)):
        images = decoded[target]
        spec = VideoSpec(width=images.shape[2], height=images.shape[1], frames=len(images), fps=SWAP_FPS,
                         crf=SWAP_CRF)
        real = write_video(out / "real" / f"{k:03d}.mp4", images, spec)
        others = [v for v in ids[k + 1:] + ids[:k] if video_group(v) != video_group(target)][:sources]
        for j, source in enumerate(others):
            source_images = decoded[source]
            swapped = [swap_frame(image, faces[target][i], source_images[i % len(source_images)],
                                  faces[source][i % len(source_images)]) for i, image in enumerate(images)]
            path = write_video(out / "swap" / f"{k:03d}_{j}.mp4", swapped, spec)
            pairs.append(SwapPair(target, source, path, real))
    with (out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split", "method"])
        reals = sorted({p.real for p in pairs})
        writer.writerows([(p.relative_to(out).as_posix(), 0, "test", "real") for p in reals])
        writer.writerows([(p.swap.relative_to(out).as_posix(), 1, "test", "swap") for p in pairs])
    listing.write_text(json.dumps([{"target": p.target, "source": p.source, "swap": p.swap.relative_to(out).as_posix(),
                                    "real": p.real.relative_to(out).as_posix()} for p in pairs], indent=1))
    return pairs


def pair_accuracy(pairs: Sequence[SwapPair], score_of: dict[str, float], root: Path) -> float:
    """The share of pairs whose swap scores above its real clip (ties count half; pairs with a missing score are
    left out); ``score_of`` maps a video's path relative to ``root`` to its video score."""
    results = []
    for pair in pairs:
        swap = score_of.get(pair.swap.relative_to(root).as_posix())
        real = score_of.get(pair.real.relative_to(root).as_posix())
        if swap is not None and real is not None:
            results.append(1.0 if swap > real else 0.5 if swap == real else 0.0)
    return float(np.mean(results)) if results else float("nan")
