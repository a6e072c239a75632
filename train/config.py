"""Typed configuration of an experiment; presets live as YAML files in ``train/configs/`` (``load_preset``).

The model's part (``ModelConfig``) is what a trained model *is* and lives in ``dfguard.inference.config``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dfguard.config import load_config
from dfguard.inference.config import ModelConfig

from .augment import UploadAugment
from .self_blend import BlendSettings

PRESETS_DIR = Path(__file__).with_name("configs")


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
    always stay), e.g. ``[Deepfakes]`` to train on one FaceForensics++ method and test on the others. ``fakes``:
    the data set's labelled fakes (``dataset``), self-blended fakes made from its real faces alone
    (``self-blend``, ``train/self_blend.py``: for teams with real videos and no fakes), or both; ``blend``: how
    those are drawn; ``augment``: the upload degradations applied to training crops of both classes
    (``train/augment.py``; off by default)."""

    methods: tuple[str, ...] | None = None
    fakes: Literal["dataset", "self-blend", "both"] = "dataset"
    blend: BlendSettings = field(default_factory=BlendSettings)
    augment: UploadAugment = field(default_factory=UploadAugment)


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
