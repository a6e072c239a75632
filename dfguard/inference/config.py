"""What a model is made of (``ModelConfig``): the part of an experiment's config that inference needs.

Training's ``ExperimentConfig`` holds one; a checkpoint stores it, and loading a model reads only it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dfguard.kernels.layout import check_cutoff

DEFAULT_CUTOFF = 4  # the papers' high-pass: the 4×4 lowest DCT frequencies of each 8×8 block zeroed


@dataclass(frozen=True)
class RGBStreamConfig:
    """RGB stream: a timm backbone on the face crop, optionally CDNet's four part encoders (eyes, nose, mouth).

    ``img_size``: for backbones that fix their input size when built (ViTs, CLIP's among them), the model's
    ``image_size``; ``trainable``: ``all`` the backbone's weights, or ``layernorm`` only its LayerNorms (the
    projection and everything after the backbone train either way), the light fine-tuning that keeps a CLIP
    encoder's features, as the 2025 CLIP-based detectors do."""

    backbone: str = "efficientnet_b4"
    pretrained_file: Path | None = None  # ImageNet/CLIP weights from a local file (nothing is fetched at run time)
    features: int = 256
    parts: bool = False
    part_features: int = 64
    drop_rate: float = 0.2
    img_size: int | None = None
    trainable: Literal["all", "layernorm"] = "all"


@dataclass(frozen=True)
class FreqStreamConfig:
    """Frequency stream: a light CNN on the blockwise DCT high-pass map and/or CDNet's 128-d frequency vector."""

    cutoff: int = DEFAULT_CUTOFF
    use_map: bool = True
    map_channels: tuple[int, ...] = (16, 32, 64, 128)
    use_vector: bool = True
    features: int = 128

    def __post_init__(self) -> None:
        if not (self.use_map or self.use_vector):
            raise ValueError("the frequency stream needs use_map or use_vector")
        check_cutoff(self.cutoff)


@dataclass(frozen=True)
class ModelConfig:
    """The detector: streams (either may be absent, not both), the 200-d fused embedding, crop sizes."""

    preset: str
    rgb: RGBStreamConfig | None = field(default_factory=RGBStreamConfig)
    freq: FreqStreamConfig | None = field(default_factory=FreqStreamConfig)
    embedding: int = 200
    image_size: int = 256
    part_size: int = 64

    @property
    def cutoff(self) -> int:
        """The DCT cutoff of the model's frequency inputs (the frequency stream's; 4 for a model without one,
        whose unused inputs are still computed the same way everywhere)."""
        return self.freq.cutoff if self.freq else DEFAULT_CUTOFF

    def __post_init__(self) -> None:
        if self.rgb is None and self.freq is None:
            raise ValueError("a model needs at least one stream (rgb or freq)")
        if self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 (the DCT works on 8×8 blocks), got {self.image_size}")
