"""The face detectors (mediapipe's BlazeFace models), where their weights come from and where what we derive from
them is cached; needs neither torch nor OpenCV, so the serving steps that only letterbox frames stay light."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from dfguard.paths import cache_dir

ARTIFACT_VERSION = 3  # bump when the cached state dict or ONNX graph changes meaning


@dataclass(frozen=True)
class DetectorKind:
    """One BlazeFace model: its name, its file in mediapipe's wheel, its square input side, its SSD anchor grids
    as (feature-map side, anchors per cell), finest first (MediaPipe's ``SsdAnchorsCalculator`` options), and
    ``smallest_face``: the face height in input pixels from which it finds faces reliably (measured on real
    photos: full range finds most faces of 12 px and all from 14; short range all from about 21 px), which decides how
    finely ``dfguard.faces.tiles`` cuts a frame; ``largest_face``: the largest face box, as a fraction of the input
    side, that it finds reliably, which decides how far the whole-frame window zooms out (measured on real
    footage of faces that fill 224-px frames: full range finds every one at half the input and misses some from
    0.6 up, many at 0.8; short range finds them up to 0.8)."""

    name: str
    filename: str
    input_size: int
    anchor_grids: tuple[tuple[int, int], ...]
    smallest_face: int
    largest_face: float

    def tflite_path(self) -> Path:
        """Where mediapipe's wheel keeps this model (found without importing mediapipe, which takes a second)."""
        import importlib.util

        spec = importlib.util.find_spec("mediapipe")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("mediapipe is not installed: BlazeFace's weights come from its wheel "
                                      "(pip install 'deepfake-guard[train]')")
        return Path(spec.submodule_search_locations[0]) / "modules" / "face_detection" / self.filename

    @property
    def anchors(self) -> int:
        """How many anchors (candidate boxes) the network scores per image."""
        return sum(side * side * per_cell for side, per_cell in self.anchor_grids)


DETECTORS = {kind.name: kind for kind in (
    # selfie range: faces filling much of the frame; stride 8 → 16×16 cells × 2, the stride-16 layers → 8×8 × 6
    DetectorKind("blazeface_short_range", "face_detection_short_range.tflite", 128, ((16, 2), (8, 6)), 24,
                 0.75),
    # full range: faces of any size up to a few metres away; one stride-4 layer, 48×48 cells × 1
    DetectorKind("blazeface_full_range", "face_detection_full_range_sparse.tflite", 192, ((48, 1),), 16,
                 0.5),
)}
SHORT_RANGE = DETECTORS["blazeface_short_range"]
INPUT_SIZE = SHORT_RANGE.input_size  # the single-pass letterbox side (extract_faces, detect_whole_image)


def detector_kind(name: str) -> DetectorKind:
    """The detector called ``name`` (``ValueError`` listing the known ones otherwise)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; known: {sorted(DETECTORS)}")
    return DETECTORS[name]


def tflite_path() -> Path:
    """Where mediapipe's wheel keeps the short-range BlazeFace model."""
    return SHORT_RANGE.tflite_path()


def cached_artifact(source: Path, suffix: str) -> Path:
    """Where an artifact derived from the model file ``source`` is cached: named by the file's hash and by
    ``ARTIFACT_VERSION``, which changes whenever what we derive from it changes (outputs, units, names)."""
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]
    return cache_dir() / f"{Path(source).stem}-{digest}-v{ARTIFACT_VERSION}{suffix}"


def cached_graph(kind: DetectorKind, max_batch: int = 1024) -> Path:
    """Where the ONNX graph of ``kind`` (batches up to ``max_batch``) is cached; ``dfguard.faces.export``
    writes it."""
    return cached_artifact(kind.tflite_path(), f"-b{max_batch}.onnx")


def publish(partial: Path, final: Path) -> Path:
    """Move a finished file into place atomically, so a concurrent reader never sees half of it."""
    partial.replace(final)
    return final
