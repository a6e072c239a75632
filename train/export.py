"""``dfguard export``: the trained model as the ensemble's ONNX models, each proven against PyTorch.

Writes into the output folder:

* ``rgb_stream.onnx``: ``FACES`` uint8 ``[B, 3, S, S]`` (+ ``PARTS`` uint8 ``[B, 4, 3, P, P]``) → ``RGB_FEATURES``
* ``freq_stream.onnx``: ``DCT_MAP`` float32 ``[B, 1, S, S]`` and/or ``FREQ_VECTOR`` ``[B, 128]`` → ``FREQ_FEATURES``
* ``fusion.onnx``: the features of the streams the model has → ``EMBEDDING`` ``[B, 200]``, ``LOGIT`` ``[B]``
* ``face_detector.onnx``: BlazeFace (``DETECTOR_INPUT`` → ``regressors``, ``scores``)
* ``classifier.json``: how ``EMBEDDING``/``LOGIT`` become a score (cluster centres or the logit), the verdict
  thresholds, and the sizes and cutoff the other steps must use.

Normalisation is inside the graphs, the batch dimension is dynamic (1..``max_batch``), and every file is run in
ONNX Runtime against PyTorch before it is kept: a mismatch fails the export.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfguard.faces.crops import CropConfig, extract_faces
from dfguard.faces.export import export_detector
from dfguard.kernels import FREQ_VECTOR_SIZE
from dfguard.onnx_export import export_onnx

from .data import frequency_features
from .evaluate import load_checkpoint
from .models import DeepfakeDetector


@dataclass(frozen=True)
class Thresholds:
    """``VERDICT``: ``fake`` at or above ``fake``, ``real`` at or below ``real``, ``uncertain`` between."""

    fake: float = 0.6
    real: float = 0.4


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
        """``(RGB_FEATURES, FREQ_FEATURES)``, or just the one the model has."""
        empty = first.new_zeros((first.shape[0], 0))
        rgb = first if self.has_rgb else empty
        freq = (second if self.has_rgb else first) if self.has_freq else empty
        return self.fusion(rgb, freq)


def sample_crops(config: CropConfig, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Real face and part crops for the parity checks: the synthetic source photos through ``extract_faces``."""
    from .synthetic import source_photos

    photos = source_photos()
    crops = extract_faces([photos[k % len(photos)].image for k in range(count)], config)
    return crops.faces, crops.parts


def export_model(checkpoint: Path, out: Path, *, max_batch: int = 256, tolerance: float = 1e-4,
                 thresholds: Thresholds = Thresholds(), detector: bool = True) -> dict:
    """Export a training checkpoint; returns (and writes as ``classifier.json``) the serving parameters."""
    model, config, stage = load_checkpoint(checkpoint)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    crop = CropConfig(size=config.model.image_size, part_size=config.model.part_size)
    faces, parts = sample_crops(crop, 6)
    cutoff = config.model.freq.cutoff if config.model.freq else 4
    dct_map, vector = frequency_features(faces, cutoff)
    checks = [slice(0, 1), slice(0, 6)]
    features = {}
    with torch.inference_mode():
        full = model(torch.from_numpy(faces), torch.from_numpy(parts), torch.from_numpy(dct_map),
                     torch.from_numpy(vector))
    if model.rgb_stream is not None:
        graph = RGBStreamGraph(model)
        inputs = {"FACES": faces} | ({"PARTS": parts} if graph.parts else {})
        export_onnx(graph, _examples(inputs), out / "rgb_stream.onnx", output_names=["RGB_FEATURES"],
                    checks=[{k: v[s] for k, v in inputs.items()} for s in checks], max_batch=max_batch,
                    tolerance=tolerance)
        with torch.inference_mode():
            features["RGB_FEATURES"] = graph(*(torch.from_numpy(v) for v in inputs.values())).numpy()
    if model.freq_stream is not None:
        graph = FreqStreamGraph(model)
        inputs = ({"DCT_MAP": dct_map} if graph.use_map else {}) | ({"FREQ_VECTOR": vector} if graph.use_vector
                                                                    else {})
        export_onnx(graph, _examples(inputs), out / "freq_stream.onnx", output_names=["FREQ_FEATURES"],
                    checks=[{k: v[s] for k, v in inputs.items()} for s in checks], max_batch=max_batch,
                    tolerance=tolerance)
        with torch.inference_mode():
            features["FREQ_FEATURES"] = graph(*(torch.from_numpy(v) for v in inputs.values())).numpy()
    fusion = FusionGraph(model)
    export_onnx(fusion, _examples(features), out / "fusion.onnx", output_names=["EMBEDDING", "LOGIT"],
                checks=[{k: v[s] for k, v in features.items()} for s in checks], max_batch=max_batch,
                tolerance=tolerance)
    with torch.inference_mode():
        composed = fusion(*(torch.from_numpy(v) for v in features.values()))[0]
    if not np.allclose(composed.numpy(), full.embedding.numpy(), atol=tolerance):
        raise RuntimeError("the exported streams composed do not reproduce the model's embedding")
    if detector:
        export_detector(out / "face_detector.onnx", tolerance=tolerance)
    parameters = {
        "preset": config.model.preset, "stage": stage, "score": "cluster" if stage == 2 else "logit",
        "center_real": model.centers.real.tolist(), "center_fake": model.centers.fake.tolist(),
        "cluster_scale": 4.0, "thresholds": {"fake": thresholds.fake, "real": thresholds.real},
        "image_size": config.model.image_size, "part_size": config.model.part_size, "cutoff": cutoff,
        "freq_vector_size": FREQ_VECTOR_SIZE, "models": sorted(p.stem for p in out.glob("*.onnx")),
    }
    (out / "classifier.json").write_text(json.dumps(parameters, indent=2))
    return parameters


def _examples(inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Batch-2 example tensors for tracing (a batch of 1 could be specialised away)."""
    return {k: torch.from_numpy(v[:2]) for k, v in inputs.items()}
