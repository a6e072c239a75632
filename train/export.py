"""``dfguard export``: the trained model as the ensemble's ONNX models, each proven against PyTorch.

Writes into the output folder:

* ``rgb_stream.onnx``: ``FACES`` uint8 ``[B, 3, S, S]`` (+ ``PARTS`` uint8 ``[B, 4, 3, P, P]``) → ``RGB_FEATURES``
* ``freq_stream.onnx``: ``DCT_MAP`` float32 ``[B, 1, S, S]`` and/or ``FREQ_VECTOR`` ``[B, 128]`` → ``FREQ_FEATURES``
* ``fusion.onnx``: the features of the streams the model has → ``EMBEDDING`` ``[B, 200]``, ``LOGIT`` ``[B, 1]``
* ``face_detector.onnx``: BlazeFace (``DETECTOR_INPUT`` → ``regressors``, ``scores``)
* ``serving_spec.json``: the model's serving spec (``dfguard.inference.spec``): how ``EMBEDDING``/``LOGIT``
  become a score (cluster centres or the logit), the verdict thresholds, and the crops and cutoff the other steps
  must use.

Normalisation is inside the graphs, the batch dimension is dynamic (1..``max_batch``), and every file is run in
ONNX Runtime against PyTorch before it is kept: a mismatch fails the export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfguard.faces.crops import extract_faces
from dfguard.faces.export import export_detector
from dfguard.faces.settings import CropConfig, DetectorConfig, TrackConfig
from dfguard.faces.weights import detector_kind
from dfguard.inference.checkpoint import load_model
from dfguard.inference.features import frequency_features
from dfguard.inference.models import DeepfakeDetector
from dfguard.inference.spec import SPEC_FILE, CalibratedScores, ServingSpec
from dfguard.onnx_export import ExportParityError, export_onnx
from dfguard.scoring import VerdictThresholds


class RGBStreamGraph(nn.Module):
    """The RGB stream with plain tensor inputs, for export."""

    def __init__(self, model: DeepfakeDetector) -> None:
        super().__init__()
        self.stream, self.parts = model.rgb_stream, model.rgb_stream.parts is not None

    def forward(self, faces: torch.Tensor, parts: torch.Tensor | None = None) -> torch.Tensor:
        return self.stream(faces, parts if self.parts else None)


class FreqStreamGraph(nn.Module):
    """The frequency stream with the inputs it uses, for export."""

    def __init__(self, model: DeepfakeDetector) -> None:
        super().__init__()
        self.stream = model.freq_stream
        self.use_map = model.freq_stream.map_encoder is not None
        self.use_vector = model.freq_stream.vector_encoder is not None

    def forward(self, first: torch.Tensor, second: torch.Tensor | None = None) -> torch.Tensor:
        """``(DCT_MAP, FREQ_VECTOR)``, or just the one the stream reads."""
        dct_map = first if self.use_map else None
        vector = (second if self.use_map else first) if self.use_vector else None
        return self.stream(dct_map, vector)


class FusionGraph(nn.Module):
    """Fusion of the streams the model has (an absent stream contributes zero columns)."""

    def __init__(self, model: DeepfakeDetector) -> None:
        super().__init__()
        self.fusion = model.fusion
        self.has_rgb, self.has_freq = model.rgb_stream is not None, model.freq_stream is not None

    def forward(self, first: torch.Tensor, second: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(RGB_FEATURES, FREQ_FEATURES)``, or just the one the model has → ``EMBEDDING [B, 200]`` and
        ``LOGIT [B, 1]`` (a trailing 1, not ``[B]``: a batching TensorRT model cannot have a scalar per item)."""
        empty = first.new_zeros((first.shape[0], 0))
        rgb = first if self.has_rgb else empty
        freq = (second if self.has_rgb else first) if self.has_freq else empty
        embedding, logit = self.fusion(rgb, freq)
        return embedding, logit[:, None]


def sample_crops(config: CropConfig, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Real face and part crops for the parity checks: the synthetic source photos through ``extract_faces``."""
    from .synthetic import source_photos

    photos = source_photos()
    crops = extract_faces([photos[k % len(photos)].image for k in range(count)], config)
    return crops.faces, crops.parts


def export_graph(graph: nn.Module, inputs: dict[str, np.ndarray], path: Path, output_names: list[str], *,
                 max_batch: int, tolerance: float) -> tuple[np.ndarray, ...]:
    """Export one graph, checked at batch 1 and at the full batch of ``inputs``; return its PyTorch outputs."""
    export_onnx(graph, {k: torch.from_numpy(v[:2]) for k, v in inputs.items()}, path, output_names=output_names,
                checks=[{k: v[:1] for k, v in inputs.items()}, inputs], max_batch=max_batch, tolerance=tolerance)
    with torch.inference_mode():
        outputs = graph(*(torch.from_numpy(v) for v in inputs.values()))
    return tuple(o.numpy() for o in (outputs if isinstance(outputs, tuple) else (outputs,)))


def export_model(checkpoint: Path, out: Path, *, max_batch: int = 256, tolerance: float = 1e-4,
                 verdict: VerdictThresholds = VerdictThresholds(), detector: bool = True,
                 faces: DetectorConfig = DetectorConfig(), tracks: TrackConfig = TrackConfig(),
                 calibrated: CalibratedScores | None = None) -> ServingSpec:
    """Export a training checkpoint; returns (and writes as ``serving_spec.json``) its serving spec. ``faces``
    and ``tracks``: how the served model finds and links faces; ``detector``: also export that detector;
    ``calibrated``: the calibration and verdict thresholds ``dfguard calibrate`` fitted (else ``verdict``)."""
    trained = load_model(checkpoint)
    model, spec = trained.model, trained.spec(verdict, detector=faces, tracks=tracks, calibrated=calibrated)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    crops, parts = sample_crops(spec.crop, 6)
    dct_map, vector = frequency_features(crops, spec.cutoff)
    limits = {"max_batch": max_batch, "tolerance": tolerance}
    written, features = [], {}
    if model.rgb_stream is not None:
        graph = RGBStreamGraph(model)
        inputs = {"FACES": crops} | ({"PARTS": parts} if graph.parts else {})
        (features["RGB_FEATURES"],) = export_graph(graph, inputs, out / "rgb_stream.onnx", ["RGB_FEATURES"], **limits)
        written.append("rgb_stream")
    if model.freq_stream is not None:
        graph = FreqStreamGraph(model)
        inputs = ({"DCT_MAP": dct_map} if graph.use_map else {}) | (
            {"FREQ_VECTOR": vector} if graph.use_vector else {})
        (features["FREQ_FEATURES"],) = export_graph(graph, inputs, out / "freq_stream.onnx", ["FREQ_FEATURES"],
                                                    **limits)
        written.append("freq_stream")
    embedding, _ = export_graph(FusionGraph(model), features, out / "fusion.onnx", ["EMBEDDING", "LOGIT"], **limits)
    written.append("fusion")
    with torch.inference_mode():
        reference = model(*(torch.from_numpy(a) for a in (crops, parts, dct_map, vector))).embedding.numpy()
    if not np.allclose(embedding, reference, atol=tolerance):
        raise ExportParityError("the exported streams composed do not reproduce the model's embedding")
    if detector:
        export_detector(out / "face_detector.onnx", tolerance=tolerance, kind=detector_kind(faces.name))
        written.append("face_detector")
    spec = trained.spec(verdict, tuple(written), detector=faces, tracks=tracks, calibrated=calibrated)
    spec.write(out / SPEC_FILE)
    return spec


REPOSITORY_STEPS = {"face_detector": "face_detector.onnx", "rgb_stream": "rgb_stream.onnx",
                    "freq_stream": "freq_stream.onnx", "fusion": "fusion.onnx"}


def config_max_batch_size(config: Path) -> int:
    """``max_batch_size`` of a Triton model config (0 when absent)."""
    import re

    match = re.search(r"^max_batch_size:\s*(\d+)", Path(config).read_text(), re.M)
    return int(match.group(1)) if match else 0


def export_repository(checkpoint: Path, repository: Path, *, target: str = "cpu", template: Path | None = None,
                      **options: object) -> ServingSpec:
    """Export into a Triton model repository (the source tree's ``model_repository/``, or ``template`` copied to
    ``repository`` first, without its built artifacts): each ONNX file becomes ``<step>/1/model.onnx`` and
    ``serving_spec.json`` goes to the repository's root. ``target="gpu"`` also builds ``<step>/1/model.plan`` with
    TensorRT, and stops before exporting anything when TensorRT is missing (``TensorRTMissingError``)."""
    import shutil
    import tempfile

    from .tensorrt import build_plan, require_tensorrt

    if target not in ("cpu", "gpu"):
        raise ValueError(f"target must be cpu or gpu, got {target!r}")
    if target == "gpu":
        require_tensorrt()
    repository = Path(repository)
    if template is not None:
        shutil.copytree(template, repository, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.onnx", "*.plan", "__pycache__", SPEC_FILE))
    missing = [step for step in REPOSITORY_STEPS if not (repository / step / "configs" / "cpu.pbtxt").is_file()]
    if missing:
        raise FileNotFoundError(f"{repository} is not a deepfake-guard model repository: no configs for {missing}")
    with tempfile.TemporaryDirectory() as scratch:
        spec = export_model(checkpoint, Path(scratch), **options)
        absent = sorted(set(REPOSITORY_STEPS) - set(spec.models))
        if absent:
            raise ValueError(f"the ensemble needs both streams (with parts, DCT map and vector); this model has no "
                             f"{absent}: serve presets like tiny, full")
        for step, name in REPOSITORY_STEPS.items():
            (repository / step / "1").mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(scratch) / name, repository / step / "1" / "model.onnx")
            if target == "gpu":  # the plan's largest batch is the config's max_batch_size, or Triton refuses it
                build_plan(repository / step / "1" / "model.onnx", repository / step / "1" / "model.plan",
                           max_batch=config_max_batch_size(repository / step / "config.pbtxt"))
        shutil.copy(Path(scratch) / SPEC_FILE, repository / SPEC_FILE)
    return spec
