"""The obvious script a user would write instead of deepfake-guard, the baseline of the pipeline benchmark.

One video at a time: PyAV decodes every frame and keeps ``num_frames`` spread over the video, mediapipe's
FaceDetection runs frame by frame, OpenCV cuts the face and part crops, SciPy computes the blockwise DCT, and the
trained model runs in PyTorch eager. Same libraries and the same model as ours, no serving, no batching tricks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np
import scipy.fft
import torch

if TYPE_CHECKING:
    from benchmarks.references import FrontEnd


class ObviousScript:
    """``score(path) -> (video score, faces found)`` the straightforward way (see the module docstring)."""

    def __init__(self, checkpoint: Path, num_frames: int) -> None:
        import mediapipe as mp

        from dfguard.inference.checkpoint import load_model

        trained = load_model(checkpoint)
        spec = trained.spec()
        self.model = trained.model
        self.size, self.part, self.cutoff = spec.crop.size, spec.crop.part_size, spec.cutoff
        self.num_frames = num_frames
        self.detector = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)

    def frames(self, path: Path) -> list[np.ndarray]:
        """Decode the whole video, keep ``num_frames`` evenly spaced frames."""
        with av.open(str(path)) as container:
            every = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        picks = np.unique(np.round(np.linspace(0, len(every) - 1, self.num_frames)).astype(int))
        return [every[k] for k in picks]

    def crops(self, frame: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The first face, square ×1.3, and 64-px squares around the eyes, nose tip and mouth (none without one)."""
        found = self.detector.process(frame).detections
        if not found:
            return []
        height, width = frame.shape[:2]
        box = found[0].location_data.relative_bounding_box
        keypoints = [(k.x * width, k.y * height) for k in found[0].location_data.relative_keypoints[:4]]
        return [self.face_crops(frame, (box.xmin * width, box.ymin * height, (box.xmin + box.width) * width,
                                        (box.ymin + box.height) * height), keypoints)]

    def face_crops(self, frame: np.ndarray, box: tuple[float, float, float, float],
                   keypoints: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
        """The face of ``box`` (x0, y0, x1, y1) square ×1.3, and part squares around its four ``keypoints``."""
        x0, y0, x1, y1 = box
        half = 1.3 * max(x1 - x0, y1 - y0) / 2
        face = self.square(frame, (x0 + x1) / 2, (y0 + y1) / 2, half, self.size)
        parts = [self.square(frame, x, y, half / 4, self.part) for x, y in keypoints]
        return face.transpose(2, 0, 1), np.stack(parts).transpose(0, 3, 1, 2)

    @staticmethod
    def square(frame: np.ndarray, cx: float, cy: float, half: float, size: int) -> np.ndarray:
        """A square around (cx, cy), padded with black where it leaves the frame, resized to ``size``."""
        x0, y0, side = round(cx - half), round(cy - half), max(2, round(2 * half))
        padded = cv2.copyMakeBorder(frame, side, side, side, side, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        return cv2.resize(padded[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side], (size, size),
                          interpolation=cv2.INTER_AREA)

    def dct_features(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """High-pass maps and 128-d frequency vectors with SciPy's DCT on 8×8 blocks."""
        gray = faces.astype(np.float32).transpose(0, 2, 3, 1) @ np.array([0.299, 0.587, 0.114], np.float32)
        count, size = gray.shape[0], gray.shape[1]
        blocks = gray.reshape(count, size // 8, 8, size // 8, 8).transpose(0, 1, 3, 2, 4)
        coefficients = scipy.fft.dctn(blocks, axes=(-2, -1), norm="ortho")
        amplitude = np.log1p(np.abs(coefficients)).reshape(count, -1, 64)
        vector = np.concatenate([amplitude.mean(1), amplitude.std(1)], axis=1).astype(np.float32)
        coefficients[..., : self.cutoff, : self.cutoff] = 0
        highpass = scipy.fft.idctn(coefficients, axes=(-2, -1), norm="ortho")
        return highpass.transpose(0, 1, 3, 2, 4).reshape(count, 1, size, size).astype(np.float32), vector

    @torch.no_grad()
    def score(self, path: Path) -> tuple[float, int]:
        """Mean P(fake) over the faces found (NaN without any), and how many there were."""
        crops = [c for frame in self.frames(path) for c in self.crops(frame)]
        if not crops:
            return float("nan"), 0
        faces, parts = np.stack([c[0] for c in crops]), np.stack([c[1] for c in crops])
        dct_map, vector = self.dct_features(faces)
        output = self.model(torch.from_numpy(faces), torch.from_numpy(parts), torch.from_numpy(dct_map),
                            torch.from_numpy(vector))
        return float(torch.sigmoid(output.logit).mean()), len(crops)


class PeerScript(ObviousScript):
    """The obvious script at our work: every face a peer's front-end finds in each sampled frame (``finder``, from
    ``benchmarks.references``: MTCNN on the frame halved, mediapipe on tiles), cropped and scored by the same
    model in PyTorch eager."""

    def __init__(self, checkpoint: Path, num_frames: int, finder: FrontEnd) -> None:
        super().__init__(checkpoint, num_frames)
        self.finder = finder

    def crops(self, frame: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every face the front-end finds, with its part crops."""
        found = self.finder(frame)
        return [self.face_crops(frame, tuple(box), [tuple(k) for k in keypoints])
                for box, keypoints in zip(found.boxes, found.keypoints, strict=True)]
