"""The face front-ends peers use, as ``frame → boxes`` functions the face benchmarks compare ours with.

- mediapipe's ``FaceDetection`` (TFLite, XNNPACK), short range and full range, on the whole frame;
- mediapipe full range on overlapping tiles and the whole frame, merged by non-maximum suppression: what a careful
  engineer writes with mediapipe alone to find small faces in HD frames;
- facenet-pytorch's MTCNN on the frame halved, thresholds 0.85/0.95/0.95: the DFDC winner's front-end (its wheel
  carries the weights; its pins are old, so it is installed for benchmarks only, with ``--no-deps``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dfguard.faces.decode import pairwise_iou

Detector = Callable[[np.ndarray], np.ndarray]  # RGB uint8 frame -> boxes [K, 4] (x0, y0, x1, y1) in its pixels
MTCNN_INSTALL = "pip install requests && pip install --no-deps facenet-pytorch==2.6.0"
TILE, TILE_OVERLAP, TILE_NMS_IOU = 576, 0.25, 0.3  # full range finds faces from ~16 of its 192 px: 48 px at 576


@dataclass(frozen=True)
class Found:
    """Faces found in a frame: ``boxes [K, 4]`` (x0, y0, x1, y1), ``keypoints [K, 4, 2]`` (the person's right eye,
    left eye, nose tip, mouth centre; what the part crops are cut around) in its pixels, and ``scores [K]``."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __getitem__(self, keep: object) -> Found:
        return Found(self.boxes[keep].reshape(-1, 4), self.keypoints[keep].reshape(-1, 4, 2),
                     self.scores[keep].reshape(-1))

    def shifted(self, x: float, y: float) -> Found:
        """The same faces in a frame whose origin is ``(-x, -y)`` from this one's (a tile's, mapped back)."""
        return Found(self.boxes + np.array([x, y, x, y], np.float32), self.keypoints + np.array([x, y], np.float32),
                     self.scores)

    @staticmethod
    def concatenate(parts: list[Found]) -> Found:
        """All faces of ``parts``, in order."""
        return Found(np.concatenate([p.boxes for p in parts]), np.concatenate([p.keypoints for p in parts]),
                     np.concatenate([p.scores for p in parts]))


FrontEnd = Callable[[np.ndarray], Found]  # RGB uint8 frame -> the faces a peer finds


def mediapipe_found(selection: int, min_score: float = 0.5) -> FrontEnd:
    """mediapipe ``FaceDetection`` (``selection`` 0: short range, 1: full range) on the whole frame."""
    import mediapipe as mp

    detector = mp.solutions.face_detection.FaceDetection(model_selection=selection,
                                                         min_detection_confidence=min_score)

    def run(frame: np.ndarray) -> Found:
        height, width = frame.shape[:2]
        found = detector.process(np.ascontiguousarray(frame)).detections or []
        relative = [d.location_data.relative_bounding_box for d in found]
        boxes = np.array([(b.xmin * width, b.ymin * height, (b.xmin + b.width) * width,
                           (b.ymin + b.height) * height) for b in relative], np.float32).reshape(-1, 4)
        keypoints = np.array([[(k.x * width, k.y * height) for k in d.location_data.relative_keypoints[:4]]
                              for d in found], np.float32).reshape(-1, 4, 2)
        return Found(boxes, keypoints, np.array([d.score[0] for d in found], np.float32))
    return run


def mediapipe_detector(selection: int, min_score: float = 0.5) -> Detector:
    """mediapipe ``FaceDetection`` on the whole frame (0: short range, 1: full range), boxes only."""
    found = mediapipe_found(selection, min_score)
    return lambda frame: found(frame).boxes


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Starts of tiles of side ``tile`` covering ``length`` pixels, consecutive tiles sharing ``overlap``."""
    if length <= tile:
        return [0]
    step = max(1, round(tile * (1 - overlap)))
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept, best score first: each drops the lower-scored boxes overlapping it by more
    than ``iou``."""
    order, kept = np.argsort(-scores), []
    overlap = pairwise_iou(boxes, boxes)
    suppressed = np.zeros(len(boxes), bool)
    for k in order:
        if not suppressed[k]:
            kept.append(k)
            suppressed |= overlap[k] > iou
    return np.array(kept, np.int64)


def mediapipe_tiled_found(tile: int = TILE, overlap: float = TILE_OVERLAP) -> FrontEnd:
    """mediapipe full range on the whole frame and on ``tile``-px tiles overlapping by ``overlap``, merged."""
    found = mediapipe_found(1)

    def run(frame: np.ndarray) -> Found:
        height, width = frame.shape[:2]
        parts = [found(frame)]
        if max(height, width) > tile:
            parts += [found(frame[y:y + tile, x:x + tile]).shifted(x, y)
                      for y in tile_origins(height, tile, overlap) for x in tile_origins(width, tile, overlap)]
        merged = Found.concatenate(parts)
        return merged[non_maximum_suppression(merged.boxes, merged.scores, TILE_NMS_IOU)]
    return run


def mediapipe_tiled(tile: int = TILE, overlap: float = TILE_OVERLAP) -> Detector:
    """``mediapipe_tiled_found``, boxes only."""
    found = mediapipe_tiled_found(tile, overlap)
    return lambda frame: found(frame).boxes


def mtcnn_found() -> FrontEnd:
    """facenet-pytorch's MTCNN on the frame halved (thresholds 0.85/0.95/0.95), as the DFDC winner ran it; its
    five landmarks (eyes, nose, mouth corners, image left first) give the four keypoints."""
    import cv2
    import torch

    try:
        from facenet_pytorch import MTCNN
    except ImportError as error:
        raise SystemExit(f"the MTCNN reference needs facenet-pytorch ({error}): {MTCNN_INSTALL}") from error
    torch.set_num_threads(max(1, torch.get_num_threads()))
    mtcnn = MTCNN(margin=0, thresholds=[0.85, 0.95, 0.95], keep_all=True, device="cpu")

    def run(frame: np.ndarray) -> Found:
        half = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)
        boxes, scores, landmarks = mtcnn.detect(half, landmarks=True)
        if boxes is None:
            return Found(np.zeros((0, 4), np.float32), np.zeros((0, 4, 2), np.float32), np.zeros(0, np.float32))
        landmarks = np.asarray(landmarks, np.float32) * 2
        keypoints = np.concatenate([landmarks[:, :3], landmarks[:, 3:].mean(1, keepdims=True)], axis=1)
        return Found(np.asarray(boxes, np.float32).reshape(-1, 4) * 2, keypoints, np.asarray(scores, np.float32))
    return run


def mtcnn_detector() -> Detector:
    """``mtcnn_found``, boxes only."""
    found = mtcnn_found()
    return lambda frame: found(frame).boxes


def mtcnn_installed() -> bool:
    """Whether facenet-pytorch (the MTCNN reference) is installed."""
    import importlib.util

    return importlib.util.find_spec("facenet_pytorch") is not None
