"""Where BlazeFace's weights come from and where what we derive from them is cached; needs neither torch nor
OpenCV, so the serving steps that only letterbox frames for the detector stay light."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dfguard.paths import cache_dir

INPUT_SIZE = 128
ARTIFACT_VERSION = 3  # bump when the cached state dict or ONNX graph changes meaning


def tflite_path() -> Path:
    """Where mediapipe's wheel keeps the short-range BlazeFace model."""
    import mediapipe

    return Path(mediapipe.__file__).parent / "modules" / "face_detection" / "face_detection_short_range.tflite"


def cached_artifact(source: Path, suffix: str) -> Path:
    """Where an artifact derived from the model file ``source`` is cached: named by the file's hash and by
    ``ARTIFACT_VERSION``, which changes whenever what we derive from it changes (outputs, units, names)."""
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]
    return cache_dir() / f"blazeface_short_range-{digest}-v{ARTIFACT_VERSION}{suffix}"


def publish(partial: Path, final: Path) -> Path:
    """Move a finished file into place atomically, so a concurrent reader never sees half of it."""
    partial.replace(final)
    return final
