"""ONNX export of the face detector, checked against PyTorch (``dfguard export`` calls it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dfguard.onnx_export import export_onnx

from .blazeface import INPUT_SIZE, BlazeFace, load_blazeface

INPUT_NAME = "DETECTOR_INPUT"
OUTPUT_NAMES = ("REGRESSORS", "SCORES")


def export_detector(path: Path, *, detector: BlazeFace | None = None, max_batch: int = 1024,
                    tolerance: float = 1e-4) -> Path:
    """Write BlazeFace as ONNX: ``DETECTOR_INPUT`` float32 ``[batch, 3, 128, 128]`` pixels (0..255) →
    ``REGRESSORS [batch, 896, 16]``, ``SCORES [batch, 896, 1]``; fails if ONNX Runtime and PyTorch differ
    by more than ``tolerance`` on random pixels and on a smooth synthetic image, at batch 1 and 7."""
    rng = np.random.default_rng(0)
    shape = (3, INPUT_SIZE, INPUT_SIZE)
    ramp = np.broadcast_to(np.linspace(0, 255, INPUT_SIZE, dtype=np.float32), shape)
    checks = [{INPUT_NAME: rng.uniform(0, 255, (1, *shape)).astype(np.float32)},
              {INPUT_NAME: np.stack([ramp] + [rng.uniform(0, 255, shape).astype(np.float32) for _ in range(6)])}]
    return export_onnx(detector or load_blazeface(), {INPUT_NAME: torch.zeros(1, *shape)}, path,
                       output_names=OUTPUT_NAMES, checks=checks, max_batch=max_batch, tolerance=tolerance)
