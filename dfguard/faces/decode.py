"""Turning BlazeFace's raw outputs into detections: SSD anchors, box/keypoint decoding, weighted NMS.

A port of MediaPipe's ``SsdAnchorsCalculator`` (short-range options), ``TensorsToDetectionsCalculator`` and
``NonMaxSuppressionCalculator`` (WEIGHTED), vectorised with NumPy. Coordinates are normalised to the 128×128
network input.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .weights import SHORT_RANGE

NUM_KEYPOINTS = 6
MIN_SCORE = 0.5
NMS_IOU = 0.3
ANCHOR_GRIDS = SHORT_RANGE.anchor_grids  # the default; dfguard.faces.weights.DETECTORS has every model's


@lru_cache(maxsize=4)
def anchor_centers(grids: tuple[tuple[int, int], ...] = ANCHOR_GRIDS) -> np.ndarray:
    """The anchor centres ``[A, 2]`` (x, y) in [0, 1] of the given grids (896 for short range); cells
    row-major, anchors innermost; fixed anchor size, so width and height are 1 and only the centres matter."""
    grids_out = []
    for side, per_cell in grids:
        centers = (np.arange(side) + 0.5) / side
        y, x = np.meshgrid(centers, centers, indexing="ij")
        grids_out.append(np.repeat(np.stack([x.ravel(), y.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(grids_out).astype(np.float32)


@dataclass(frozen=True)
class RawDetections:
    """Decoded candidates of one image before NMS: boxes ``[K, 4]`` (x0, y0, x1, y1), keypoints ``[K, 6, 2]``
    and scores ``[K]``, normalised to the network input."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


def decode(regressors: np.ndarray, scores: np.ndarray, min_score: float = MIN_SCORE,
           grids: tuple[tuple[int, int], ...] = ANCHOR_GRIDS) -> RawDetections:
    """Decode one image's ``regressors [A, 16]`` (offsets in units of the input size) and ``scores [A, 1]``
    (probabilities) on the anchors of ``grids``, keeping scores ≥ ``min_score``."""
    scores = scores[:, 0]
    anchors = anchor_centers(grids)
    center = regressors[:, :2] + anchors
    size = regressors[:, 2:4]
    boxes = np.concatenate([center - size / 2, center + size / 2], axis=1)
    keypoints = regressors[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    keep = (scores >= min_score) & (size > 0).all(axis=1)
    return RawDetections(boxes[keep], keypoints[keep], scores[keep])


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas of boxes ``[..., 4]`` (x0, y0, x1, y1)."""
    return np.prod(boxes[..., 2:] - boxes[..., :2], axis=-1)


def intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[K, M]``: the area shared by each box of ``a [K, 4]`` with each box of ``b [M, 4]``."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[K, M]``: intersection over union of each box of ``a [K, 4]`` with each box of ``b [M, 4]``."""
    inter = intersection_areas(a, b)
    return inter / np.maximum(box_areas(a)[:, None] + box_areas(b)[None, :] - inter, 1e-12)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box ``[4]`` with each of ``boxes [K, 4]`` (x0, y0, x1, y1)."""
    return pairwise_iou(box[None], boxes)[0]


def weighted_nms(raw: RawDetections, threshold: float = NMS_IOU) -> RawDetections:
    """MediaPipe's weighted NMS: each kept detection is the score-weighted mean of the candidates overlapping the
    best remaining one by more than ``threshold`` IoU, with that best candidate's score. Best first."""
    order = np.argsort(-raw.scores, kind="stable")
    boxes, keypoints, scores = raw.boxes[order], raw.keypoints[order], raw.scores[order]
    kept_boxes, kept_keypoints, kept_scores = [], [], []
    while len(scores):
        group = iou(boxes[0], boxes) > threshold
        group[0] = True
        weights = scores[group] / scores[group].sum()
        kept_boxes.append(weights @ boxes[group])
        kept_keypoints.append(np.tensordot(weights, keypoints[group], axes=1))
        kept_scores.append(scores[0])
        boxes, keypoints, scores = boxes[~group], keypoints[~group], scores[~group]
    if not kept_scores:
        return RawDetections(np.zeros((0, 4), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
                             np.zeros(0, np.float32))
    return RawDetections(np.stack(kept_boxes), np.stack(kept_keypoints), np.asarray(kept_scores))
