"""Frames of prepared videos as model inputs, computed the way the ensemble computes them.

``FrameDataset`` reads the crops ``dfguard prepare`` wrote (one sample per frame with a face) and
``dfguard.inference.features.model_inputs`` turns them into the four tensors the model takes, with the code the
ensemble's ``dct_highpass`` step runs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dfguard.faces.crops import FLIP_KEYPOINTS, PART_KEYPOINTS
from dfguard.inference.features import model_inputs

from .augment import UploadAugment
from .prepare import PreparedVideo, read_manifest

FLIPPED_PARTS = [PART_KEYPOINTS.index(FLIP_KEYPOINTS[k]) for k in PART_KEYPOINTS]  # right eye <-> left eye


@dataclass(frozen=True)
class FrameRef:
    """A face: which video (index into ``FrameDataset.videos``) and which row of its crops; the sampled frame it
    was found in and its track."""

    video: int
    row: int
    frame: int
    track: int


class FrameDataset(Dataset):
    """One sample per face (the largest of each frame, or every face, as ``dfguard prepare --faces`` chose), from
    the ``ok`` videos of ``split`` in a prepared folder."""

    def __init__(self, prepared: Path, split: str, *, cutoff: int = 4, flip: bool = False, cache_videos: int = 64,
                 methods: tuple[str, ...] | None = None, degrade: Callable[[np.ndarray], np.ndarray] | None = None,
                 augment: UploadAugment | None = None):
        self.root = Path(prepared)
        self.videos: list[PreparedVideo] = [r for r in read_manifest(self.root) if r.split == split and r.status == "ok"
                                            and (methods is None or r.method == "real" or r.method in methods)]
        if not self.videos:
            raise ValueError(f"{self.root}: no prepared video with a face in split {split!r}"
                             + (f" for methods {list(methods)}" if methods else ""))
        self.frames = [FrameRef(v, row, int(frame), int(track)) for v in range(len(self.videos))
                       for row, (frame, track) in enumerate(zip(*self._faces_of(v), strict=True))]
        self.cutoff, self.flip, self.cache_videos = cutoff, flip, cache_videos
        self.degrade = degrade  # applied to face and part crops before the model inputs (robustness sweeps)
        self.augment = augment if augment is not None and augment.active else None  # random, for training
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.frames)

    def _faces_of(self, video: int) -> tuple[np.ndarray, np.ndarray]:
        """The sampled frame and track of each face of a video."""
        try:
            found = self._load(video, ("face_frame", "face_track"))
        except KeyError as error:
            raise ValueError(f"{self.root / self.videos[video].crops} was prepared by an older dfguard (no "
                             f"face_frame): run dfguard prepare again into a new folder") from error
        return found["face_frame"], found["face_track"]

    def track_counts(self, video: int) -> np.ndarray:
        """Whether each track of a video counts for its verdict (as prepared)."""
        return self._load(video, ("track_counts",))["track_counts"]

    def frames_sampled(self, video: int) -> int:
        """How many frames were sampled from a video."""
        return self.videos[video].frames

    def _load(self, video: int, keys: tuple[str, ...] = ("faces", "parts", "keypoints")) -> dict[str, np.ndarray]:
        """Only the listed arrays of a video's crop file (each is decompressed on access)."""
        with np.load(self.root / self.videos[video].crops) as data:
            return {key: data[key] for key in keys}

    def _crops(self, video: int) -> dict[str, np.ndarray]:
        """A video's crops, from a small per-worker LRU cache."""
        if video not in self._cache:
            self._cache[video] = self._load(video)
            if len(self._cache) > self.cache_videos:
                self._cache.popitem(last=False)
        self._cache.move_to_end(video)
        return self._cache[video]

    @property
    def labels(self) -> np.ndarray:
        """The label of every sample (1 = fake)."""
        return np.array([self.videos[ref.video].label for ref in self.frames])

    @property
    def video_ids(self) -> list[str]:
        """The video id of every sample."""
        return [self.videos[ref.video].video_id for ref in self.frames]

    def crops_of(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A sample's face crop ``[3, S, S]``, parts ``[4, 3, P, P]`` and keypoints ``[6, 2]`` (face-crop pixels)."""
        ref = self.frames[index]
        crops = self._crops(ref.video)
        return crops["faces"][ref.row], crops["parts"][ref.row], crops["keypoints"][ref.row]

    def labels_of(self, index: int) -> int:
        """A sample's label (1 = fake)."""
        return self.videos[self.frames[index].video].label

    def sample(self, face: np.ndarray, parts: np.ndarray, label: int, index: int) -> dict[str, torch.Tensor]:
        """The model's inputs from a face and its parts (flipped at random when ``flip``, degraded at random as
        uploads are when ``augment``, then by ``degrade``)."""
        if self.flip and torch.rand(()) < 0.5:  # torch's RNG: seeded per worker by the DataLoader
            face, parts = face[..., ::-1], parts[FLIPPED_PARTS][..., ::-1]
        if self.augment is not None:
            upload = self.augment.draw(np.random.default_rng(int(torch.randint(2**31, ()))))
            if upload is not None:
                face, parts = upload(face), np.stack([upload(part) for part in parts])
        if self.degrade is not None:
            face, parts = self.degrade(face), np.stack([self.degrade(part) for part in parts])
        inputs = model_inputs(np.ascontiguousarray(face[None]), np.ascontiguousarray(parts[None]), self.cutoff)
        sample = {key: value[0] for key, value in inputs.items()}
        sample["label"] = torch.tensor(label)
        sample["index"] = torch.tensor(index)
        return sample

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        face, parts, _ = self.crops_of(index)
        return self.sample(face, parts, self.labels_of(index), index)
