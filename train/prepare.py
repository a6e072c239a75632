"""``dfguard prepare``: sample frames evenly, find and crop faces, store the crops losslessly with a manifest.

Per video: ``read_frames`` (``count`` frames spread over the whole video), ``extract_faces`` (the same crops the
ensemble's ``face_crop`` step makes), then ``crops/<video id>.npz`` (compressed, lossless) with ``faces``,
``parts``, ``found``, ``keypoints``, ``boxes`` and ``frame_index``. ``manifest.jsonl`` gets one record per video,
``ok``, ``no_face`` or ``error`` with its message: unreadable videos and faceless frames are recorded, never
dropped. A rerun skips the videos already recorded; a crash loses at most the videos in flight (each crop file
is renamed into place when complete, each manifest line is one append).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dfguard.appendfile import AppendOnlyFile
from dfguard.faces.crop_config import CropConfig
from dfguard.faces.crops import extract_faces
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


def prepare_video(record: VideoRecord, out_dir: Path, frames: int, config: CropConfig) -> PreparedVideo:
    """Decode, crop and save one video; failures become an ``error`` record, not an exception."""
    base = {"video_id": record.video_id, "path": str(record.path), "label": record.label, "split": record.split,
            "method": record.method}
    try:
        decoded = read_frames(record.path, frames)
    except VideoError as error:
        return PreparedVideo(**base, status="error", error=str(error))
    crops = extract_faces(list(decoded.images), config)
    relative = crops_path(record.video_id)
    target = out_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(partial, faces=crops.faces, parts=crops.parts, found=crops.found,
                        keypoints=crops.keypoints, boxes=crops.boxes, frame_index=decoded.indices)
    partial.replace(target)
    found = int(crops.found.sum())
    return PreparedVideo(**base, status="ok" if found else "no_face", frames=len(decoded.indices), faces=found,
                         crops=relative.as_posix())


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
                    config: CropConfig = CropConfig(), workers: int = 1, progress: bool = True) -> list[PreparedVideo]:
    """Prepare every video not yet in ``out_dir``'s manifest; returns the records written by this run."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = AppendOnlyFile(out_dir / MANIFEST)
    manifest.repair()  # first: a half-written last line left by a crash is cut, and that video prepared again
    done = {r.video_id for r in read_manifest(out_dir)}
    todo = [r for r in records if r.video_id not in done]
    written = []
    bar = tqdm(total=len(todo), desc="preparing", unit="video", disable=not progress)

    def record(result: PreparedVideo) -> None:
        manifest.append(json.dumps(asdict(result)) + "\n")
        written.append(result)
        bar.update()
        bar.set_postfix(errors=sum(r.status == "error" for r in written))

    if workers <= 1:
        for video in todo:
            record(prepare_video(video, out_dir, frames, config))
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            futures = [pool.submit(prepare_video, video, out_dir, frames, config) for video in todo]
            for future in as_completed(futures):
                record(future.result())
    bar.close()
    return written
