"""The serving spec: everything a served model needs besides its weights, in one typed, versioned file.

``dfguard export`` writes it as ``serving_spec.json`` beside the ONNX files (at a model repository's root);
the ensemble's steps, ``LocalDetector``, evaluation and the benchmarks read it with ``read_spec`` or build the
same object from a checkpoint (``dfguard.inference.checkpoint``). Reading is strict: a file of another
``version``, an unknown or missing key or a value of the wrong type is an error naming the file and the key, never
a silent default. Needs NumPy only (no torch, no OpenCV), so every step can read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

from dfguard.calibration import Calibration, OperatingPoint
from dfguard.config import ConfigError, from_dict, to_dict
from dfguard.faces.settings import CropConfig, DetectorConfig, TrackConfig
from dfguard.kernels.layout import check_cutoff
from dfguard.scoring import CLUSTER_SCALE, RULE_OF_STAGE, VerdictThresholds, VideoScorer

T = TypeVar("T")
SPEC_FILE = "serving_spec.json"
SPEC_VERSION = 3  # 3: calibration and operating points; 2: every face (detector, tracks); 1: the largest face


class SpecError(ConfigError):
    """A serving spec is missing, of another version, or does not match its schema."""


@dataclass(frozen=True)
class ServingSpec:
    """How the ensemble's steps turn frames into a verdict for one exported model.

    ``detector``, ``tracks`` and ``crop`` drive ``face_finder`` (and which detector graph the repository holds),
    ``cutoff`` ``dct_highpass``, ``score_rule``, the centres, ``cluster_scale``, ``verdict`` and
    ``tracks.min_track_faces`` ``cluster_classifier``; ``calibration`` turns its raw scores into probabilities
    and ``verdict`` applies to those, its thresholds chosen at ``operating_points`` (``dfguard calibrate``; none
    and the identity calibration until then); ``models`` lists the ONNX graphs written with it."""

    preset: str
    stage: int
    score_rule: Literal["cluster", "logit"]
    center_real: tuple[float, ...]
    center_fake: tuple[float, ...]
    crop: CropConfig
    cutoff: int
    cluster_scale: float = CLUSTER_SCALE
    verdict: VerdictThresholds = field(default_factory=VerdictThresholds)
    freq_vector_size: int = 128
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracks: TrackConfig = field(default_factory=TrackConfig)
    calibration: Calibration = field(default_factory=Calibration)
    operating_points: tuple[OperatingPoint, ...] = ()
    models: tuple[str, ...] = ()
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        if len(self.center_real) != len(self.center_fake):
            raise ValueError(f"the centres differ in length: {len(self.center_real)} and {len(self.center_fake)}")
        check_cutoff(self.cutoff)
        if RULE_OF_STAGE.get(self.stage) != self.score_rule:
            raise ValueError(f"stage {self.stage} scores by {self.score_rule!r}; the rules of the stages: "
                             f"{RULE_OF_STAGE}")
        if not self.cluster_scale > 0:
            raise ValueError(f"cluster_scale must be positive, got {self.cluster_scale}")

    def scorer(self) -> VideoScorer:
        """The scoring rule, calibration and verdict thresholds of this model."""
        return VideoScorer(self.score_rule, np.asarray(self.center_real, np.float64),
                           np.asarray(self.center_fake, np.float64), self.cluster_scale, self.verdict,
                           self.calibration)

    def to_json(self) -> str:
        """The spec as JSON text (what ``write`` stores)."""
        return as_json(self)

    def write(self, path: Path) -> Path:
        """Write the spec to ``path`` (a file, or a folder to hold ``serving_spec.json``)."""
        path = Path(path)
        path = path / SPEC_FILE if path.is_dir() else path
        path.write_text(self.to_json())
        return path


@dataclass(frozen=True)
class CalibratedScores:
    """What ``dfguard calibrate`` fits and ``dfguard export --calibration`` puts into a serving spec: the
    calibration, the verdict thresholds on calibrated scores, and the operating points they were chosen from."""

    calibration: Calibration
    verdict: VerdictThresholds
    operating_points: tuple[OperatingPoint, ...] = ()

    def to_json(self) -> str:
        """As JSON text (what ``dfguard calibrate`` writes as ``calibration.json``)."""
        return as_json(self)


def as_json(config: ServingSpec | CalibratedScores) -> str:
    """A spec or calibration file's JSON text."""
    return json.dumps(to_dict(config), indent=2) + "\n"


def read_json(text: str, source: str) -> object:
    """JSON text, or a ``SpecError`` naming ``source``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(f"{source}: not valid JSON: {error}") from error


def build(cls: type[T], data: object, source: str) -> T:
    """``cls`` from parsed JSON, strictly (``dfguard.config.from_dict``), or a ``SpecError``."""
    try:
        return from_dict(cls, data, source=source)
    except ConfigError as error:
        raise SpecError(str(error)) from error


def read_calibrated(path: Path) -> CalibratedScores:
    """The ``calibration.json`` that ``dfguard calibrate`` wrote (strict, like a spec)."""
    path = Path(path)
    return build(CalibratedScores, read_json(path.read_text(), str(path)), str(path))


def parse_spec(text: str, source: str = "<serving spec>") -> ServingSpec:
    """A spec from JSON text, checked against this version's schema."""
    data = read_json(text, source)
    version = data.get("version") if isinstance(data, dict) else None
    if version != SPEC_VERSION:
        raise SpecError(f"{source}: serving spec version {version!r}, this dfguard reads version {SPEC_VERSION}: "
                        f"export the model again with this version (dfguard export)")
    return build(ServingSpec, data, source)


def read_spec(path: Path) -> ServingSpec:
    """The spec in ``path`` (a ``serving_spec.json``, or a folder or model repository holding one)."""
    path = Path(path)
    path = path / SPEC_FILE if path.is_dir() else path
    if not path.is_file():
        raise SpecError(f"{path} is missing: export the model first (dfguard export --repository or --out)")
    return parse_spec(path.read_text(), str(path))
