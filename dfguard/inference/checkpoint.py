"""Loading a trained model from a checkpoint, and the serving spec that describes it.

A checkpoint (``best.pt``, written by training) holds the weights, the experiment's config and the training
progress; inference reads only the model's config and the stage whose classifier scores it, so nothing here
imports training code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dfguard.calibration import Calibration
from dfguard.config import from_dict
from dfguard.faces.settings import CropConfig, DetectorConfig, TrackConfig
from dfguard.kernels import FREQ_VECTOR_SIZE
from dfguard.scoring import RULE_OF_STAGE, VerdictThresholds

from .config import ModelConfig
from .models import DeepfakeDetector, build_model
from .spec import CalibratedScores, ServingSpec


@dataclass
class TrainedModel:
    """A model in eval mode, what it is made of, and the stage (1: logit head, 2: cluster centres) that scores it."""

    model: DeepfakeDetector
    config: ModelConfig
    stage: int

    def spec(self, verdict: VerdictThresholds = VerdictThresholds(), models: tuple[str, ...] = (), *,
             detector: DetectorConfig = DetectorConfig(), tracks: TrackConfig = TrackConfig(),
             calibrated: CalibratedScores | None = None) -> ServingSpec:
        """The serving spec of this model with the given verdict thresholds, face detector and tracks
        (``models``: the graphs exported); ``calibrated`` (from ``dfguard calibrate``) brings the calibration,
        operating points and the verdict thresholds chosen at them, in place of ``verdict``."""
        centers = self.model.centers
        return ServingSpec(
            preset=self.config.preset, stage=self.stage, score_rule=RULE_OF_STAGE[self.stage],
            center_real=tuple(centers.real.double().cpu().tolist()),
            center_fake=tuple(centers.fake.double().cpu().tolist()),
            crop=CropConfig(size=self.config.image_size, part_size=self.config.part_size), cutoff=self.config.cutoff,
            verdict=calibrated.verdict if calibrated else verdict, freq_vector_size=FREQ_VECTOR_SIZE,
            detector=detector, tracks=tracks, calibration=calibrated.calibration if calibrated else Calibration(),
            operating_points=calibrated.operating_points if calibrated else (), models=tuple(sorted(models)))

    def check_spec(self, spec: ServingSpec) -> None:
        """Raise ``ValueError`` unless ``spec`` was exported from this model (same preset, stage, crops, centres)."""
        own = self.spec(spec.verdict, spec.models)
        same = (own.preset, own.stage, own.crop, own.cutoff, len(own.center_real)) == (
            spec.preset, spec.stage, spec.crop, spec.cutoff, len(spec.center_real))
        if not (same and np.allclose(own.center_real, spec.center_real, atol=1e-6)
                and np.allclose(own.center_fake, spec.center_fake, atol=1e-6)):
            raise ValueError("the serving spec was exported from another checkpoint (preset, stage, crops or "
                             "centres differ)")


def load_model(path: Path, device: str = "cpu") -> TrainedModel:
    """The model of a training checkpoint, in eval mode on ``device``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state = torch.load(path, map_location=device, weights_only=False)
    config = from_dict(ModelConfig, state["config"]["model"], source=f"{path} (model config)", prefix="model.")
    model = build_model(config)
    model.load_state_dict(state["model"])
    return TrainedModel(model.eval().to(device), config, int(state["progress"]["stage"]))
