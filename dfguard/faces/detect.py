"""``detect_whole_image``: letterbox a frame to the detector's input, run BlazeFace, decode, map back to pixels
(``detect_whole_images``: many frames, one network call). The search over tiles is ``dfguard.faces.search``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .decode import MIN_SCORE, NMS_IOU, RawDetections, decode, weighted_nms
from .weights import INPUT_SIZE, SHORT_RANGE, DetectorKind, cached_graph

if TYPE_CHECKING:
    from torch import nn

MIN_SIDE = 16
MAX_SIDE = 16384
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` (x0, y0, x1, y1) and ``keypoints [6, 2]`` in pixels (person's right eye, left eye,
    nose tip, mouth centre, right ear, left ear), ``score`` in [0, 1]."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float


@dataclass(frozen=True)
class Letterbox:
    """Where an image sits inside the square network input: ``input = scale · image + (left, top)``, in
    continuous pixel coordinates (0 = the left/top edge), for a network input of side ``size``."""

    scale: float
    left: float
    top: float
    size: int = INPUT_SIZE

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Map ``[..., 2]`` points normalised to the network input back to the original image's pixels."""
        return (points * self.size - np.array([self.left, self.top], np.float32)) / self.scale

    def to_frame(self, raw: RawDetections) -> RawDetections:
        """Decoded detections normalised to the network input, in the original image's pixels."""
        return RawDetections(self.to_pixels(raw.boxes.reshape(-1, 2, 2)).reshape(-1, 4),
                             self.to_pixels(raw.keypoints), raw.scores)

    def warp(self, image: np.ndarray) -> np.ndarray:
        """The network input ``[size, size, 3]``: ``image`` through this map, one bilinear warp, black outside.
        MediaPipe maps the padded ROI's corners onto the tensor's corners without a half-pixel correction; the
        same convention keeps our input equal to theirs (tests compare with mediapipe)."""
        matrix = np.array([[self.scale, 0.0, self.left], [0.0, self.scale, self.top]])
        return cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    @classmethod
    def for_size(cls, height: int, width: int, size: int = INPUT_SIZE) -> Letterbox:
        """The letterbox of an image of ``height × width`` into ``size × size`` (it depends on nothing else)."""
        scale = size / max(height, width)
        return cls(scale, (size - scale * width) / 2, (size - scale * height) / 2, size)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Check an image and return it as RGB uint8 ``[H, W, 3]`` (gray is repeated, an alpha channel dropped)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected an image as a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"images must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        image = np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"images must be [H, W, 3] RGB (or gray/RGBA), got shape {image.shape}")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"image of {width}x{height} pixels is too small to hold a face (min side {MIN_SIDE})")
    if max(height, width) > MAX_SIDE:
        raise ValueError(f"image of {width}x{height} pixels is too large (max side {MAX_SIDE}); downscale it first")
    return image


def letterbox(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Fit ``image`` into ``size × size``, aspect ratio kept, centred on black, exactly as MediaPipe's
    ImageToTensorCalculator does on the CPU (one bilinear warp, ``keep_aspect_ratio``, ``BORDER_ZERO``)."""
    return Letterbox.for_size(*image.shape[:2], size).warp(image)


def detector_input(frames: Sequence[np.ndarray] | np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """The network input for RGB uint8 frames of any sizes: float32 ``[F, 3, size, size]`` pixels in 0..255
    (the ensemble's ``DETECTOR_INPUT`` at the default 128)."""
    canvases = [letterbox(as_rgb(frame), size) for frame in frames]
    if not canvases:
        return np.zeros((0, 3, size, size), np.float32)
    return np.stack(canvases).transpose(0, 3, 1, 2).astype(np.float32)


def run_detector(batch: np.ndarray, detector: nn.Module | None = None,
                 kind: DetectorKind = SHORT_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """BlazeFace ``kind`` on a ``detector_input`` batch of its input size: ``regressors [F, A, 16]`` and face
    probabilities ``scores [F, A, 1]`` (A anchors: 896 short range, 2304 full range). By default the exported ONNX
    graph in ONNX Runtime (what the CPU ensemble serves); pass the PyTorch module to run it instead."""
    if len(batch) == 0:
        return np.zeros((0, kind.anchors, 16), np.float32), np.zeros((0, kind.anchors, 1), np.float32)
    if detector is not None:
        import torch

        with torch.inference_mode():
            regressors, scores = detector(torch.from_numpy(batch))
        return regressors.numpy(), scores.numpy()
    regressors, scores = default_session(kind).run(None, {"DETECTOR_INPUT": batch})
    return regressors, scores


def in_process_detector(kind: DetectorKind = SHORT_RANGE) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``run_detector`` for ``kind`` as a ``dfguard.faces.tiles.DetectorRun``: the detector in this process
    (``face_finder`` calls the served model instead)."""
    return lambda inputs: run_detector(inputs, kind=kind)


@lru_cache(maxsize=2)
def default_session(kind: DetectorKind = SHORT_RANGE) -> object:
    """The detector as an ONNX Runtime session on its cached graph (``dfguard.faces.export.cached_detector``:
    2.3× faster than PyTorch eager on a 2-core CPU, and the very graph ``dfguard export`` copies into a served
    repository's ``face_detector/1/model.onnx``)."""
    import onnxruntime

    path = cached_graph(kind)
    if not path.exists():
        from .export import cached_detector  # torch: only to export it, the first time

        cached_detector(kind)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("DFGUARD_THREADS", "0"))  # 0: all cores; 1 in workers
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def detections_from_outputs(regressors: np.ndarray, scores: np.ndarray, frame_sizes: Sequence[tuple[int, int]],
                            min_score: float = MIN_SCORE, kind: DetectorKind = SHORT_RANGE) -> list[list[Detection]]:
    """Decode raw outputs of BlazeFace ``kind`` on frames of the given ``(height, width)`` into pixel detections,
    best first."""
    results = []
    for frame_regressors, frame_scores, (height, width) in zip(regressors, scores, frame_sizes, strict=True):
        mapping = Letterbox.for_size(height, width, kind.input_size)
        found = weighted_nms(decode(frame_regressors, frame_scores, min_score, kind.anchor_grids), NMS_IOU)
        results.append(as_detections(mapping.to_frame(found)))
    return results


def as_detections(raw: RawDetections) -> list[Detection]:
    """Pixel-space candidates as the contract's ``Detection`` objects, in their order."""
    return [Detection(tuple(float(v) for v in box), points.astype(np.float32), float(score))
            for box, points, score in zip(raw.boxes, raw.keypoints, raw.scores, strict=True)]


def detect_whole_images(images: Sequence[np.ndarray] | np.ndarray, *, min_score: float = MIN_SCORE,
                       detector: nn.Module | None = None, kind: DetectorKind = SHORT_RANGE) -> list[list[Detection]]:
    """Faces in each of many RGB uint8 images (any sizes), best first, with one network call for all of them."""
    regressors, scores = run_detector(detector_input(images, kind.input_size), detector, kind)
    return detections_from_outputs(regressors, scores, [image.shape[:2] for image in images], min_score, kind)


def detect_whole_image(image: np.ndarray, *, min_score: float = MIN_SCORE, kind: DetectorKind = SHORT_RANGE
                 ) -> list[Detection]:
    """Faces in one RGB uint8 ``[H, W, 3]`` image seen whole in one detector window (by default short range's
    128×128), best first: faces smaller than ``kind.smallest_face`` of the image's long side are missed. What the
    service runs on an image, tiles included, is ``dfguard.faces.search.detect_faces``."""
    return detect_whole_images([image], min_score=min_score, kind=kind)[0]
