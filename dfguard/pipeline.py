"""In-process scoring: the ensemble's steps in one process, with the trained PyTorch model.

For users who just want a score (``dfguard score --local``), and as the reference the Triton ensemble must equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dfguard.faces.crops import CropConfig, extract_faces
from dfguard.scoring import VideoResult, VideoScorer
from dfguard.video import DEFAULT_FRAMES, read_frames


class LocalDetector:
    """Score videos with a training checkpoint: decode → faces → crops → DCT → model → scores and verdict."""

    def __init__(self, checkpoint: Path) -> None:
        from dfguard.train.evaluate import load_checkpoint
        from dfguard.train.export import Thresholds
        from dfguard.train.models import CLUSTER_SCALE

        self.model, config, stage = load_checkpoint(checkpoint)
        self.crop = CropConfig(size=config.model.image_size, part_size=config.model.part_size)
        self.cutoff = config.model.freq.cutoff if config.model.freq else 4
        thresholds = Thresholds()
        self.scorer = VideoScorer("cluster" if stage == 2 else "logit", self.model.centers.real.double().numpy(),
                                  self.model.centers.fake.double().numpy(), CLUSTER_SCALE, thresholds.fake,
                                  thresholds.real)

    def score(self, video: bytes | Path, num_frames: int = DEFAULT_FRAMES) -> tuple[VideoResult, np.ndarray]:
        """The video's result and the indices of the frames it looked at."""
        frames = read_frames(video, num_frames)
        return self.score_frames(frames.images), frames.indices

    def score_image(self, image: bytes | Path) -> VideoResult:
        """One image scored as a one-frame video (what the ``deepfake_image`` ensemble answers)."""
        from dfguard.image import read_image

        return self.score_frames(read_image(image)[None])

    @torch.no_grad()
    def score_frames(self, frames: np.ndarray) -> VideoResult:
        """RGB uint8 frames ``[F, H, W, 3]`` → faces → crops → DCT → model → scores and verdict."""
        from dfguard.inference.features import model_inputs

        crops = extract_faces(list(frames), self.crop)
        output = self.model(**model_inputs(crops.faces, crops.parts, self.cutoff))
        return self.scorer.score(output.embedding.numpy(), output.logit.numpy(), crops.found)
