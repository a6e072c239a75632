"""The crops both papers use, computed by one function for training and serving alike.

``crop_faces`` cuts every face ``dfguard.faces.search.find_faces`` found, one row each: the ensemble's
``face_finder`` step, the in-process pipeline and ``dfguard prepare`` call both, so a model trained on its crops
sees at serving time exactly what it was trained on. ``crop_frames`` cuts the largest face of each frame (with a
``found`` flag per frame), and ``extract_faces`` is the single short-range pass that feeds it.

* Face: a square around the detection's box centre with side
  ``margin × max(box width, box height)``, moved inside the frame where it fits and padded with black where it
  does not, resized to ``size × size``.
* Parts (CDNet): right eye, left eye, nose tip and mouth centre (the person's right/left), each a square of side
  ``part_scale × face side`` centred on its keypoint, placed like the face square, resized to
  ``part_size × part_size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .detect import Detection, as_rgb, detections_from_outputs, detector_input, run_detector
from .settings import PART_KEYPOINTS, CropConfig

if TYPE_CHECKING:
    from .blazeface import BlazeFace
    from .search import FoundFaces

FLIP_KEYPOINTS = (1, 0, 2, 3, 5, 4)  # the person's right and left swap under a horizontal flip


@dataclass(frozen=True)
class FaceCrops:
    """Crops, one row per face (or per frame, for ``crop_frames``): ``faces`` uint8 ``[R, 3, S, S]``, ``parts``
    uint8 ``[R, 4, 3, P, P]``, ``found`` bool ``[R]``; ``keypoints`` float32 ``[R, 6, 2]`` in face-crop pixels and
    ``boxes`` float32 ``[R, 4]`` (the square crop in frame pixels, x0, y0, x1, y1), NaN in rows without a face."""

    faces: np.ndarray
    parts: np.ndarray
    found: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray


def square_around(center: np.ndarray, side: float, height: int, width: int) -> np.ndarray:
    """A square ``(x0, y0, x1, y1)`` of ``side`` centred on ``center``, moved inside the frame where it fits."""
    origin = center - side / 2
    limit = np.array([width, height], np.float32) - side
    origin = np.where(limit >= 0, np.clip(origin, 0, np.maximum(limit, 0)), limit / 2)  # too big: centre it
    return np.concatenate([origin, origin + side]).astype(np.float32)


def cut_square(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square ``box`` of ``frame`` resized to ``size × size`` (black outside the frame), as CHW uint8."""
    scale = size / float(box[2] - box[0])
    matrix = np.array([[scale, 0.0, -box[0] * scale], [0.0, scale, -box[1] * scale]])
    interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    if interpolation == cv2.INTER_AREA:  # warpAffine has no area filter: cut, then resize
        x0, y0 = np.floor(box[:2]).astype(int)
        x1, y1 = np.ceil(box[2:]).astype(int)
        padded = _cut_padded(frame, x0, y0, x1, y1)
        sub_box = box - np.array([x0, y0, x0, y0], np.float32)
        resized = cv2.resize(padded, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        offset = np.round(sub_box[:2] * scale).astype(int)
        crop = resized[offset[1]:offset[1] + size, offset[0]:offset[0] + size]
        crop = np.pad(crop, ((0, size - crop.shape[0]), (0, size - crop.shape[1]), (0, 0)))
    else:
        crop = cv2.warpAffine(frame, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)
    return np.ascontiguousarray(crop.transpose(2, 0, 1))


def _cut_padded(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``frame[y0:y1, x0:x1]`` with black where the rectangle leaves the frame."""
    height, width = frame.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    sy0, sx0, sy1, sx1 = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    return out


def largest(detections: Sequence[Detection]) -> Detection | None:
    """The detection with the largest box area (the subject of a frame), or None."""
    area = lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])  # noqa: E731
    return max(detections, key=area, default=None)


def crop_face(frame: np.ndarray, face: Detection, config: CropConfig, crops: FaceCrops, row: int) -> None:
    """Cut one face and its parts from an RGB frame into row ``row`` of ``crops``."""
    height, width = frame.shape[:2]
    s, p = config.size, config.part_size
    x0, y0, x1, y1 = face.box
    face_side = max(x1 - x0, y1 - y0)
    box = square_around(np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32), config.margin * face_side,
                        height, width)
    crops.faces[row] = cut_square(frame, box, s)
    for j, k in enumerate(PART_KEYPOINTS):
        part_box = square_around(face.keypoints[k], config.part_scale * face_side, height, width)
        crops.parts[row, j] = cut_square(frame, part_box, p)
    crops.keypoints[row] = (face.keypoints - box[:2]) * (s / (box[2] - box[0]))
    crops.boxes[row] = box
    crops.found[row] = True


def empty_crops(count: int, config: CropConfig) -> FaceCrops:
    """``count`` rows of black crops, ``found`` False, NaN keypoints and boxes."""
    s, p = config.size, config.part_size
    return FaceCrops(np.zeros((count, 3, s, s), np.uint8), np.zeros((count, 4, 3, p, p), np.uint8),
                     np.zeros(count, bool), np.full((count, 6, 2), np.nan, np.float32),
                     np.full((count, 4), np.nan, np.float32))


def crop_frames(frames: Sequence[np.ndarray], detections: Sequence[Sequence[Detection]],
                config: CropConfig = CropConfig()) -> FaceCrops:
    """Face and part crops of each frame's largest detection (zeros and ``found = False`` without one)."""
    crops = empty_crops(len(frames), config)
    for i, (frame, found) in enumerate(zip(frames, detections, strict=True)):
        face = largest(found)
        if face is not None:
            crop_face(as_rgb(frame), face, config, crops, i)
    return crops


def crop_faces(frames: Sequence[np.ndarray], found: FoundFaces, config: CropConfig = CropConfig(),
               rows: int | None = None) -> FaceCrops:
    """Crops of every found face, in ``found``'s order: row ``i`` is face ``i``. ``rows`` (at least
    ``len(found)``) pads with black rows, ``found`` False: the model steps always get a batch of at least one."""
    crops = empty_crops(max(len(found), rows or 0), config)
    rgb = [as_rgb(frame) for frame in frames]
    for i, (k, face) in enumerate(zip(found.frame, found.detections, strict=True)):
        crop_face(rgb[k], face, config, crops, i)
    return crops


def extract_faces(frames: Sequence[np.ndarray], config: CropConfig = CropConfig(),
                  detector: BlazeFace | None = None) -> FaceCrops:
    """The largest face of each frame, found by short-range BlazeFace on the letterboxed frame (one batched
    network call) and cropped: the CDNet paper's single pass, which the detector benchmark and export's parity
    crops use. Serving, the pipeline and ``prepare`` find every face with ``dfguard.faces.search.find_faces``."""
    regressors, scores = run_detector(detector_input(frames), detector)
    sizes = [frame.shape[:2] for frame in frames]
    return crop_frames(frames, detections_from_outputs(regressors, scores, sizes, config.min_score), config)


def flip_horizontal(crops: FaceCrops) -> FaceCrops:
    """Mirror crops left-right, as a horizontally flipped frame would give: faces and parts mirrored, the
    right/left eye parts and keypoints swapped, keypoint x reflected."""
    size = crops.faces.shape[-1]
    keypoints = crops.keypoints[:, FLIP_KEYPOINTS].copy()
    keypoints[..., 0] = size - keypoints[..., 0]
    return replace(crops, faces=crops.faces[..., ::-1].copy(), parts=crops.parts[:, [1, 0, 2, 3], ..., ::-1].copy(),
                   keypoints=keypoints)
