"""``dfguard prepare``: sample frames evenly, find and crop faces, store the crops losslessly with a manifest.

Per video: ``read_frames`` (``count`` frames spread over the whole video), ``find_faces`` and ``crop_faces`` (the
faces, tracks and crops the ensemble's ``face_finder`` step makes), then ``crops/<video id>.npz`` (compressed,
lossless), one row per face: ``faces``, ``parts``, ``keypoints``, ``boxes`` (the crop squares), ``face_box``
(the detections), ``face_frame`` (position in ``frame_index``), ``face_track``, and per video ``frame_index`` and
``track_counts``. ``faces="largest"`` keeps the largest face of each frame (the papers' protocol), ``"all"``
every face (up to ``max_faces`` per frame). ``manifest.jsonl`` gets one record per video,
``ok``, ``no_face`` or ``error`` with its message: unreadable videos and faceless frames are recorded, never
dropped. A rerun skips the videos already recorded; a crash loses at most the videos in flight (each crop file
is renamed into place when complete, each manifest line is one append).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from dfguard.appendfile import AppendOnlyFile
from dfguard.faces.crops import crop_faces
from dfguard.faces.detect import in_process_detector
from dfguard.faces.search import find_faces
from dfguard.faces.settings import CropConfig, DetectorConfig, TrackConfig
from dfguard.faces.weights import detector_kind
from dfguard.progress import progress_bar
from dfguard.video import VideoError, read_frames

from .datasets import VideoRecord

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class PreparedVideo:
    """One manifest line: the video, what happened, and where its crops are (relative to the output folder)."""

    video_id: str
    path: str
    label: int
    split: str
    method: str
    status: str  # "ok", "no_face" or "error"
    frames: int = 0
    faces: int = 0
    crops: str | None = None
    error: str | None = None


def crops_path(video_id: str) -> Path:
    """Where a video's crops go, relative to the output folder (its id, with ``.npz``)."""
    return Path("crops") / Path(video_id).with_suffix(".npz")


FACE_MODES = ("largest", "all")


@dataclass(frozen=True)
class FaceSelection:
    """Which faces ``prepare`` keeps (``largest`` or ``all``), and how it finds and links them."""

    faces: str = "largest"
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracks: TrackConfig = field(default_factory=TrackConfig)

    def __post_init__(self) -> None:
        if self.faces not in FACE_MODES:
            raise ValueError(f"faces must be one of {FACE_MODES}, got {self.faces!r}")


def prepare_video(record: VideoRecord, out_dir: Path, frames: int, config: CropConfig,
                  selection: FaceSelection = FaceSelection()) -> PreparedVideo:
    """Decode, find, crop and save one video; failures become an ``error`` record, not an exception."""
    base = {"video_id": record.video_id, "path": str(record.path), "label": record.label, "split": record.split,
            "method": record.method}
    try:
        decoded = read_frames(record.path, frames)
    except VideoError as error:
        return PreparedVideo(**base, status="error", error=str(error))
    images = list(decoded.images)
    found = find_faces(images, selection.detector, selection.tracks,
                       in_process_detector(detector_kind(selection.detector.name)))
    if selection.faces == "largest":
        found = found.largest_per_frame()
    crops = crop_faces(images, found, config)
    relative = crops_path(record.video_id)
    target = out_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(partial, faces=crops.faces, parts=crops.parts, keypoints=crops.keypoints, boxes=crops.boxes,
                        face_box=found.boxes, face_frame=found.frame, face_track=found.track,
                        track_counts=found.track_counts, frame_index=decoded.indices)
    partial.replace(target)
    return PreparedVideo(**base, status="ok" if len(found) else "no_face", frames=len(decoded.indices),
                         faces=len(found), crops=relative.as_posix())


def read_manifest(out_dir: Path) -> list[PreparedVideo]:
    """The complete records of ``manifest.jsonl`` (a half-written last line from a crash is ignored)."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(PreparedVideo(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue
    return records


def _init_worker() -> None:
    """One thread per worker process: the pool provides the parallelism."""
    os.environ["DFGUARD_THREADS"] = "1"
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def prepare_dataset(records: Iterable[VideoRecord], out_dir: Path, *, frames: int = 32,
                    config: CropConfig = CropConfig(), workers: int = 1, progress: bool = True,
                    faces: str = "largest", detector: DetectorConfig = DetectorConfig(),
                    tracks: TrackConfig = TrackConfig()) -> list[PreparedVideo]:
    """Prepare every video not yet in ``out_dir``'s manifest (``faces``: ``largest`` or ``all``, found with
    ``detector`` and linked with ``tracks``); returns the records written by this run."""
    selection = FaceSelection(faces, detector, tracks)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = AppendOnlyFile(out_dir / MANIFEST)
    manifest.repair()  # first: a half-written last line left by a crash is cut, and that video prepared again
    done = {r.video_id for r in read_manifest(out_dir)}
    todo = [r for r in records if r.video_id not in done]
    written = []
    if progress and not todo:
        print(f"all {len(records)} videos already prepared in {out_dir}")
    bar = progress_bar(total=len(todo), desc="preparing", unit="video", disable=not progress or not todo)

    def record(result: PreparedVideo) -> None:
        manifest.append(json.dumps(asdict(result)) + "\n")
        written.append(result)
        bar.update()
        bar.set_postfix(errors=sum(r.status == "error" for r in written))

    if workers <= 1:
        for video in todo:
            record(prepare_video(video, out_dir, frames, config, selection))
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            futures = [pool.submit(prepare_video, video, out_dir, frames, config, selection) for video in todo]
            for future in as_completed(futures):
                record(future.result())
    bar.close()
    return written
