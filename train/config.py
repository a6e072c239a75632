"""Typed configuration of an experiment; presets live as YAML files in ``train/configs/`` (``load_preset``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dfguard.config import load_config

PRESETS_DIR = Path(__file__).with_name("configs")


@dataclass(frozen=True)
class RGBStreamConfig:
    """RGB stream: a timm backbone on the face crop, optionally CDNet's four part encoders (eyes, nose, mouth)."""

    backbone: str = "efficientnet_b4"
    pretrained_file: Path | None = None  # ImageNet weights from a local file (nothing is fetched at run time)
    features: int = 256
    parts: bool = False
    part_features: int = 64
    drop_rate: float = 0.2


@dataclass(frozen=True)
class FreqStreamConfig:
    """Frequency stream: a light CNN on the blockwise DCT high-pass map and/or CDNet's 128-d frequency vector."""

    cutoff: int = 4
    use_map: bool = True
    map_channels: tuple[int, ...] = (16, 32, 64, 128)
    use_vector: bool = True
    features: int = 128

    def __post_init__(self) -> None:
        if not (self.use_map or self.use_vector):
            raise ValueError("the frequency stream needs use_map or use_vector")
        if not 1 <= self.cutoff <= 8:
            raise ValueError(f"cutoff must be in 1..8, got {self.cutoff}")


@dataclass(frozen=True)
class ModelConfig:
    """The detector: streams (either may be absent, not both), the 200-d fused embedding, crop sizes."""

    preset: str
    rgb: RGBStreamConfig | None = field(default_factory=RGBStreamConfig)
    freq: FreqStreamConfig | None = field(default_factory=FreqStreamConfig)
    embedding: int = 200
    image_size: int = 256
    part_size: int = 64

    def __post_init__(self) -> None:
        if self.rgb is None and self.freq is None:
            raise ValueError("a model needs at least one stream (rgb or freq)")
        if self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 (the DCT works on 8×8 blocks), got {self.image_size}")


@dataclass(frozen=True)
class StageOneConfig:
    """Stage 1: binary head + supervised contrastive loss (cosine similarity, temperature 0.07)."""

    epochs: int = 20
    lr: float = 1e-4
    weight_decay: float = 1e-5
    batch_size: int = 32
    contrastive_weight: float = 1.0
    temperature: float = 0.07


@dataclass(frozen=True)
class StageTwoConfig:
    """Stage 2 (CDNet): cluster loss with EMA centres, from the best stage-1 checkpoint; ``epochs: 0`` skips it."""

    epochs: int = 20
    lr: float = 1e-4
    beta: float = 0.4
    alpha: float = 1e-4


@dataclass(frozen=True)
class DataConfig:
    """Which prepared videos train and validate: ``methods`` keeps only those manipulation methods (real videos
    always stay), e.g. ``[Deepfakes]`` to train on one FaceForensics++ method and test on the others."""

    methods: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs besides the location of its data."""

    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    stage1: StageOneConfig = field(default_factory=StageOneConfig)
    stage2: StageTwoConfig = field(default_factory=StageTwoConfig)
    seed: int = 0


def load_preset(name_or_path: str | Path, overrides: tuple[str, ...] = ()) -> ExperimentConfig:
    """Load a preset by name (``tiny``, ``dual_stream``, …) or a YAML file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESETS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
            raise ValueError(f"unknown preset {name_or_path!r}; known presets: {known}")
    return load_config(ExperimentConfig, path, overrides)
