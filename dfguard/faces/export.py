"""ONNX export of the face detector, checked against PyTorch (``dfguard export`` calls it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfguard.onnx_export import export_onnx

from .blazeface import load_detector
from .weights import SHORT_RANGE, DetectorKind

INPUT_NAME = "DETECTOR_INPUT"
OUTPUT_NAMES = ("REGRESSORS", "SCORES")


def export_detector(path: Path, *, detector: nn.Module | None = None, kind: DetectorKind = SHORT_RANGE,
                    max_batch: int = 1024, tolerance: float = 1e-4) -> Path:
    """Write BlazeFace ``kind`` as ONNX: ``DETECTOR_INPUT`` float32 ``[batch, 3, S, S]`` pixels (0..255) →
    ``REGRESSORS [batch, A, 16]``, ``SCORES [batch, A, 1]``; fails if ONNX Runtime and PyTorch differ
    by more than ``tolerance`` on random pixels and on a smooth synthetic image, at batch 1 and 7."""
    rng = np.random.default_rng(0)
    size = kind.input_size
    shape = (3, size, size)
    ramp = np.broadcast_to(np.linspace(0, 255, size, dtype=np.float32), shape)
    checks = [{INPUT_NAME: rng.uniform(0, 255, (1, *shape)).astype(np.float32)},
              {INPUT_NAME: np.stack([ramp] + [rng.uniform(0, 255, shape).astype(np.float32) for _ in range(6)])}]
    # a batch of 2 to trace with: at 1, torch.export specializes the batch axis of the full-range graph
    return export_onnx(detector or load_detector(kind), {INPUT_NAME: torch.zeros(2, *shape)}, path,
                       output_names=OUTPUT_NAMES, checks=checks, max_batch=max_batch, tolerance=tolerance)
