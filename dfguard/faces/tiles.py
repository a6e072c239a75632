"""Faces of any size in frames of any resolution: the detector run on the whole frame and on overlapping tiles.

A detector sees its input square (192 px for full range); letterboxed, a 48 px face of a 4K frame shrinks to
2 px there and is lost; a face that fills a 224-px frame fills the input, larger than the detector finds.
``tile_windows`` plans square windows level by level: level 0 is the whole frame (the letterbox mediapipe uses),
beside it a zoomed-out window where a face as tall as the frame would be too large for level 0
(``zoomed_out_side``), and each next level halves the window side, until a face of ``min_face_px`` fills at least
``smallest_face`` input pixels. A level finds faces from ``m`` = ``smallest_face`` input pixels up; the next
coarser level finds them from ``2m`` up, so a level only has to find faces up to ``2m`` itself, and its windows
overlap by ``SPAN`` · ``m`` (at most half a side): a face that small lies wholly inside one of them. Together the
levels cover every size from ``min_face_px`` up. Detections cut by a window's edge inside the frame are dropped
(the face is whole in a neighbouring window), the rest are mapped back to frame pixels and merged across windows
and levels by weighted NMS: one face, one box. ``windows_around`` plans windows around faces already known (from
a nearby frame of the same shot: ``dfguard.faces.search``), so frames between fully tiled ones cost a few
windows instead of dozens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .decode import NMS_IOU, RawDetections, box_areas, decode, intersection_areas, pairwise_iou, weighted_nms
from .detect import Detection, Letterbox, as_detections, as_rgb
from .settings import MIN_FACE_PX, TILED_MIN_SCORE, TrackConfig
from .weights import DetectorKind

EDGE = 0.02  # a box within this fraction of a window side from an inner window edge counts as cut by it
# Windows of a level overlap by SPAN of the smallest face it finds: twice that (where the coarser level takes
# over), a quarter more for detected boxes larger than the face (sizes vary ±20 %).
SPAN = 2.5
SMALLER = 0.6  # boxes under this fraction of min_face_px are below what was asked for (detected sizes vary ±20 %)
INSIDE = 0.5  # a box with this much of its area inside a box 1.5× its side is a part of that face, not a face
CONTEXT = 5.0  # a window around a known face is this many face sides wide (windows_around)
AROUND_FACES = -1  # the level of a window around a known face: it belongs to no level of the tiling
ZOOMED_OUT = -2  # the level of the zoomed-out window, for faces too large for the whole frame


@dataclass(frozen=True)
class Window:
    """A square of ``side`` frame pixels at ``(x0, y0)`` (it may reach beyond the frame: black there)."""

    x0: float
    y0: float
    side: float
    level: int

    @property
    def box(self) -> np.ndarray:
        """The window as a box (x0, y0, x1, y1) in frame pixels."""
        return np.array([self.x0, self.y0, self.x0 + self.side, self.y0 + self.side])

    def mapping(self, size: int) -> Letterbox:
        """The affine map frame → network input of side ``size`` (``Letterbox`` semantics)."""
        scale = size / self.side
        return Letterbox(scale, -self.x0 * scale, -self.y0 * scale, size)


def window_positions(length: float, side: float, overlap: float) -> list[float]:
    """Starts of windows of ``side`` along ``length``, consecutive ones sharing ``overlap`` pixels, the last flush
    with the end (one window, centred, when ``side`` covers ``length``)."""
    if side >= length:
        return [(length - side) / 2]
    starts = list(np.arange(0.0, length - side, side - overlap))
    return [*starts, length - side] if length - side - starts[-1] > 1e-6 else starts


def zoomed_out_side(height: int, width: int, kind: DetectorKind) -> float | None:
    """The side of the zoomed-out window, centred on the frame, in which a face as tall as the frame's shorter
    side fills ``kind.largest_face`` of the input (a 224-px crop whose face is the frame, a close-up), or None
    when the whole frame already shows such a face small enough (a frame at least twice as wide as high)."""
    side = min(height, width) / kind.largest_face
    return side if side > max(height, width) else None


def zoomed_out_window(height: int, width: int, kind: DetectorKind) -> list[Window]:
    """The zoomed-out window of a frame, as a plan of one window (none when ``zoomed_out_side`` says so)."""
    side = zoomed_out_side(height, width, kind)
    return [] if side is None else [Window((width - side) / 2, (height - side) / 2, side, ZOOMED_OUT)]


def tile_windows(height: int, width: int, kind: DetectorKind, min_face_px: float = MIN_FACE_PX) -> list[Window]:
    """Every window to run the detector on for a ``height × width`` frame: level 0, the whole frame, first, then
    the zoomed-out window for faces too large for it, then the tiles, coarsest first."""
    if not min_face_px >= 1:
        raise ValueError(f"min_face_px must be at least 1 pixel, got {min_face_px}")
    side = float(max(height, width))
    windows = [Window((width - side) / 2, (height - side) / 2, side, 0), *zoomed_out_window(height, width, kind)]
    level = 0
    while min_face_px * kind.input_size / side < kind.smallest_face:
        side, level = side / 2, level + 1
        overlap = min(side / 2, SPAN * kind.smallest_face * side / kind.input_size)
        windows += [Window(x, y, side, level) for y in window_positions(height, side, overlap)
                    for x in window_positions(width, side, overlap)]
    return windows


def window_input(frame: np.ndarray, window: Window, size: int) -> np.ndarray:
    """The detector input of one window: float32 ``[3, size, size]`` pixels in 0..255, black outside the frame
    (the letterbox of ``dfguard.faces.detect`` for the level-0 window)."""
    return window.mapping(size).warp(frame).transpose(2, 0, 1).astype(np.float32)


def cut_by_inner_edge(boxes: np.ndarray, window: Window, height: int, width: int) -> np.ndarray:
    """Which frame-pixel boxes ``[K, 4]`` touch an edge of ``window`` that lies inside the frame."""
    margin = EDGE * window.side
    x1, y1 = window.x0 + window.side, window.y0 + window.side
    left = (window.x0 > 0) & (boxes[:, 0] < window.x0 + margin)
    top = (window.y0 > 0) & (boxes[:, 1] < window.y0 + margin)
    right = (x1 < width) & (boxes[:, 2] > x1 - margin)
    bottom = (y1 < height) & (boxes[:, 3] > y1 - margin)
    return left | top | right | bottom


def window_candidates(window: Window, regressors: np.ndarray, scores: np.ndarray, height: int, width: int,
                      kind: DetectorKind, min_score: float = TILED_MIN_SCORE) -> RawDetections:
    """One window's raw detector outputs decoded, in frame pixels, without the boxes its inner edges cut (on level
    0 every edge is the frame's)."""
    raw = window.mapping(kind.input_size).to_frame(decode(regressors, scores, min_score, kind.anchor_grids))
    keep = ~cut_by_inner_edge(raw.boxes, window, height, width)
    return RawDetections(raw.boxes[keep], raw.keypoints[keep], raw.scores[keep])


def merge_candidates(candidates: Sequence[RawDetections], min_face_px: float = MIN_FACE_PX) -> list[Detection]:
    """One frame's detections from its windows' candidates: merged by weighted NMS, parts of larger faces and
    faces well under ``min_face_px`` dropped; best first."""
    merged = weighted_nms(RawDetections(*(np.concatenate([getattr(c, name) for c in candidates])
                                          for name in ("boxes", "keypoints", "scores"))), NMS_IOU)
    keep = ~parts_of_larger_faces(merged.boxes) & (merged.boxes[:, 3] - merged.boxes[:, 1] >= SMALLER * min_face_px)
    return as_detections(RawDetections(merged.boxes[keep], merged.keypoints[keep], merged.scores[keep]))


def parts_of_larger_faces(boxes: np.ndarray) -> np.ndarray:
    """Which boxes ``[K, 4]`` lie mostly (``INSIDE``) within a box at least 1.5× their side: a finer level
    finding an eye or a cheek of a face a coarser level found whole. Two faces never overlap that much."""
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    # [i, j]: the share of box i that lies inside box j
    inside = intersection_areas(boxes, boxes) / np.maximum(box_areas(boxes)[:, None], 1e-9)
    larger = sides[None, :] >= 1.5 * sides[:, None]
    return ((inside >= INSIDE) & larger).any(axis=1)


DetectorRun = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""A detector call: inputs ``[W, 3, S, S]`` → ``regressors [W, A, 16]``, ``scores [W, A, 1]``."""


def detect_in_windows(frames: Sequence[np.ndarray], kind: DetectorKind, run: DetectorRun, *,
                      min_face_px: float = MIN_FACE_PX, min_score: float = TILED_MIN_SCORE, batch: int = 64,
                      workers: int = 1) -> list[list[Detection]]:
    """Faces of at least ``min_face_px`` in each RGB (or gray) uint8 frame, any resolution, best first: every
    window of ``tile_windows`` through ``run_windows``."""
    frames = [as_rgb(frame) for frame in frames]
    plans = [tile_windows(*frame.shape[:2], kind, min_face_px) for frame in frames]
    candidates = run_windows(frames, plans, kind, run, min_score=min_score, batch=batch, workers=workers)
    return [merge_candidates(frame_candidates, min_face_px) for frame_candidates in candidates]


def run_windows(frames: Sequence[np.ndarray], plans: Sequence[Sequence[Window]], kind: DetectorKind,
                run: DetectorRun, *, min_score: float = TILED_MIN_SCORE, batch: int = 64, workers: int = 1
                ) -> list[list[RawDetections]]:
    """The candidates of each RGB frame's windows (``plans[k]`` for ``frames[k]``). ``run`` gets at most ``batch``
    windows at a time (a 4K frame has about 80, and each input is 442 KB at 192 px), from ``workers`` threads at
    once (for a detector that serves calls in parallel, like Triton's instances); each call's outputs are decoded
    at once, so memory holds a few batches, never a video's worth."""
    work = [(k, window) for k, plan in enumerate(plans) for window in plan]

    def detect(chunk: list[tuple[int, Window]]) -> list[tuple[int, RawDetections]]:
        regressors, scores = run(np.stack([window_input(frames[k], window, kind.input_size) for k, window in chunk]))
        return [(k, window_candidates(window, r, s, *frames[k].shape[:2], kind, min_score))
                for (k, window), r, s in zip(chunk, regressors, scores, strict=True)]

    chunks = [work[start:start + batch] for start in range(0, len(work), batch)]
    candidates: list[list[RawDetections]] = [[] for _ in frames]
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        for found in pool.map(detect, chunks):
            for k, raw in found:
                candidates[k].append(raw)
    return candidates


def found_whole(box: Sequence[float], height: int, width: int, kind: DetectorKind) -> bool:
    """Whether the whole-frame window (level 0) finds a face of this box with room to spare: twice the smallest
    face it finds reliably, so the face may shrink by ``TrackConfig.max_scale`` and still be found there."""
    return (box[3] - box[1]) * kind.input_size / max(height, width) >= 2 * kind.smallest_face


def too_large_for_whole(box: Sequence[float], height: int, width: int, kind: DetectorKind) -> bool:
    """Whether a face of this box, grown by up to ``TrackConfig.max_scale``, may be too large for the
    whole-frame window to find: then the zoomed-out window looks for it."""
    return TrackConfig.max_scale * max(box[2] - box[0], box[3] - box[1]) / max(height, width) > kind.largest_face


def windows_around(boxes: Sequence[Sequence[float]], height: int, width: int, kind: DetectorKind) -> list[Window]:
    """Windows that find these faces again in a nearby frame: one per face that the whole frame alone might miss
    for its smallness, centred on it, ``CONTEXT`` face sides wide (the face moved at most
    ``TrackConfig.max_shift`` sides from its box and still lies wholly inside; it fills ``input_size / CONTEXT``
    input pixels, well above ``smallest_face``), a window mostly covered by an earlier one left out (the same face
    seen in the frames on either side); and the zoomed-out window once when a face may be too large for it."""
    windows: list[Window] = []
    large = False
    for box in boxes:
        large |= too_large_for_whole(box, height, width, kind)
        if found_whole(box, height, width, kind):
            continue
        side = CONTEXT * max(box[2] - box[0], box[3] - box[1])
        window = Window((box[0] + box[2] - side) / 2, (box[1] + box[3] - side) / 2, side, AROUND_FACES)
        if not windows or pairwise_iou(window.box[None], np.array([w.box for w in windows])).max() <= 0.5:
            windows.append(window)
    return windows + (zoomed_out_window(height, width, kind) if large else [])


def detect_faces_tiled(frames: Sequence[np.ndarray], kind: DetectorKind, *, min_face_px: float = MIN_FACE_PX,
                       min_score: float = TILED_MIN_SCORE, batch: int = 64) -> list[list[Detection]]:
    """``detect_in_windows`` with the detector in ONNX Runtime, in this process."""
    from .detect import in_process_detector

    return detect_in_windows(frames, kind, in_process_detector(kind), min_face_px=min_face_px,
                             min_score=min_score, batch=batch)
