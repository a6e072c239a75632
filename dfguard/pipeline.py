"""In-process scoring: the ensemble's steps in one process, with the trained PyTorch model.

For users who just want a score (``dfguard score --local``), and as the reference the Triton ensemble must equal.
Needs the ``train`` extra (torch, timm, mediapipe's weights); reads the model and its serving spec through
``dfguard.inference``, never through training code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dfguard.faces.crops import extract_faces
from dfguard.inference.checkpoint import load_model
from dfguard.inference.features import model_inputs
from dfguard.inference.spec import ServingSpec
from dfguard.scoring import VideoResult
from dfguard.video import DEFAULT_FRAMES, read_frames


class LocalDetector:
    """Score videos with a training checkpoint: decode → faces → crops → DCT → model → scores and verdict.

    ``spec`` (an exported model's ``serving_spec.json``, read with ``read_spec``) brings the verdict thresholds it
    was exported with, so ``--local`` answers as the served model does; it must come from the same checkpoint.
    Without one, the checkpoint's own spec with the default thresholds."""

    def __init__(self, checkpoint: Path, spec: ServingSpec | None = None) -> None:
        trained = load_model(checkpoint)
        if spec is not None:
            trained.check_spec(spec)
        self.model = trained.model
        self.spec = spec or trained.spec()
        self.scorer = self.spec.scorer()

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
        crops = extract_faces(list(frames), self.spec.crop)
        output = self.model(**model_inputs(crops.faces, crops.parts, self.spec.cutoff))
        return self.scorer.score(output.embedding.numpy(), output.logit.numpy(), crops.found)
