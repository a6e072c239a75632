"""The face front-ends peers use, as ``frame → boxes`` functions the face benchmarks compare ours with.

- mediapipe's ``FaceDetection`` (TFLite, XNNPACK), short range and full range, on the whole frame;
- mediapipe full range on overlapping tiles and the whole frame, merged by non-maximum suppression: what a careful
  engineer writes with mediapipe alone to find small faces in HD frames;
- facenet-pytorch's MTCNN on the frame halved, thresholds 0.85/0.95/0.95: the DFDC winner's front-end (its wheel
  carries the weights; its pins are old, so it is installed for benchmarks only, with ``--no-deps``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dfguard.faces.decode import pairwise_iou

Detector = Callable[[np.ndarray], np.ndarray]  # RGB uint8 frame -> boxes [K, 4] (x0, y0, x1, y1) in its pixels
MTCNN_INSTALL = "pip install requests && pip install --no-deps facenet-pytorch==2.6.0"
TILE, TILE_OVERLAP, TILE_NMS_IOU = 576, 0.25, 0.3  # full range finds faces from ~16 of its 192 px: 48 px at 576


def mediapipe_scored(selection: int, min_score: float = 0.5) -> Callable[[np.ndarray], tuple[np.ndarray,
                                                                                                np.ndarray]]:
    """mediapipe ``FaceDetection`` (``selection`` 0: short range, 1: full range) as frame → (boxes, scores)."""
    import mediapipe as mp

    detector = mp.solutions.face_detection.FaceDetection(model_selection=selection,
                                                         min_detection_confidence=min_score)

    def run(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = frame.shape[:2]
        found = detector.process(np.ascontiguousarray(frame)).detections or []
        relative = [d.location_data.relative_bounding_box for d in found]
        boxes = np.array([(b.xmin * width, b.ymin * height, (b.xmin + b.width) * width,
                           (b.ymin + b.height) * height) for b in relative], np.float32).reshape(-1, 4)
        return boxes, np.array([d.score[0] for d in found], np.float32)
    return run


def mediapipe_detector(selection: int, min_score: float = 0.5) -> Detector:
    """mediapipe ``FaceDetection`` on the whole frame (0: short range, 1: full range)."""
    scored = mediapipe_scored(selection, min_score)
    return lambda frame: scored(frame)[0]


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Starts of tiles of side ``tile`` covering ``length`` pixels, consecutive tiles sharing ``overlap``."""
    if length <= tile:
        return [0]
    step = max(1, round(tile * (1 - overlap)))
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """The boxes kept, best score first: each drops the lower-scored boxes overlapping it by more than ``iou``."""
    order, kept = np.argsort(-scores), []
    overlap = pairwise_iou(boxes, boxes)
    suppressed = np.zeros(len(boxes), bool)
    for k in order:
        if not suppressed[k]:
            kept.append(k)
            suppressed |= overlap[k] > iou
    return boxes[kept].reshape(-1, 4)


def mediapipe_tiled(tile: int = TILE, overlap: float = TILE_OVERLAP) -> Detector:
    """mediapipe full range on the whole frame and on ``tile``-px tiles overlapping by ``overlap``, merged."""
    scored = mediapipe_scored(1)

    def run(frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        whole_boxes, whole_scores = scored(frame)
        all_boxes, all_scores = [whole_boxes], [whole_scores]
        if max(height, width) > tile:
            for y in tile_origins(height, tile, overlap):
                for x in tile_origins(width, tile, overlap):
                    boxes, scores = scored(frame[y:y + tile, x:x + tile])
                    all_boxes.append(boxes + np.array([x, y, x, y], np.float32))
                    all_scores.append(scores)
        return non_maximum_suppression(np.concatenate(all_boxes), np.concatenate(all_scores), TILE_NMS_IOU)
    return run


def mtcnn_detector() -> Detector:
    """facenet-pytorch's MTCNN on the frame halved (thresholds 0.85/0.95/0.95), as the DFDC winner ran it."""
    import cv2
    import torch

    try:
        from facenet_pytorch import MTCNN
    except ImportError as error:
        raise SystemExit(f"the MTCNN reference needs facenet-pytorch ({error}): {MTCNN_INSTALL}") from error
    torch.set_num_threads(max(1, torch.get_num_threads()))
    mtcnn = MTCNN(margin=0, thresholds=[0.85, 0.95, 0.95], keep_all=True, device="cpu")

    def run(frame: np.ndarray) -> np.ndarray:
        half = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)
        boxes, _ = mtcnn.detect(half)
        return np.zeros((0, 4), np.float32) if boxes is None else np.asarray(boxes, np.float32).reshape(-1, 4) * 2
    return run


def mtcnn_installed() -> bool:
    """Whether facenet-pytorch (the MTCNN reference) is installed."""
    import importlib.util

    return importlib.util.find_spec("facenet_pytorch") is not None
