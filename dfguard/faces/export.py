"""ONNX export of the face detector, checked against PyTorch (``dfguard export`` and the in-process detector call
it). The detector is mediapipe's network, the same for every model we train, so its graph is exported once per
weights file and batch limit into the cache; each export copies that graph and checks the copy again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfguard.onnx_export import ExportParityError, check_parity, export_onnx

from .blazeface import load_detector
from .weights import SHORT_RANGE, DetectorKind, cached_graph, publish

INPUT_NAME = "DETECTOR_INPUT"
OUTPUT_NAMES = ("REGRESSORS", "SCORES")
CACHE_TOLERANCE = 1e-4  # what a cached graph was checked at when written


def export_detector(path: Path, *, detector: nn.Module | None = None, kind: DetectorKind = SHORT_RANGE,
                    max_batch: int = 1024, tolerance: float = 1e-4) -> Path:
    """Write BlazeFace ``kind`` as ONNX: ``DETECTOR_INPUT`` float32 ``[batch, 3, S, S]`` pixels (0..255) →
    ``REGRESSORS [batch, A, 16]``, ``SCORES [batch, A, 1]``; fails if ONNX Runtime and PyTorch differ by more
    than ``tolerance`` on random pixels and on a smooth synthetic image, at batch 1 and 7.

    ``detector`` None: mediapipe's weights, whose graph comes from the cache (``cached_detector``); a module given
    is exported afresh.

    Raises:
        ExportParityError: ONNX Runtime and PyTorch disagree (``path`` is not left behind).
    """
    path = Path(path)
    if detector is not None:
        return _export(path, detector, kind, max_batch, tolerance)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached_detector(kind, max_batch), path)
    try:
        check_parity(load_detector(kind), path, parity_checks(kind), tolerance)
    except ExportParityError:
        path.unlink(missing_ok=True)
        raise
    return path


def cached_detector(kind: DetectorKind = SHORT_RANGE, max_batch: int = 1024) -> Path:
    """BlazeFace ``kind`` as an ONNX file in the cache, named by its weights file's hash: exported and checked the
    first time it is asked for (a few seconds), atomically, so concurrent processes never see half a file."""
    path = cached_graph(kind, max_batch)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.onnx")
        publish(_export(partial, load_detector(kind), kind, max_batch, CACHE_TOLERANCE), path)
    return path


def parity_checks(kind: DetectorKind) -> list[dict[str, np.ndarray]]:
    """Inputs the ONNX graph must reproduce PyTorch on: random pixels at batch 1, a ramp and random pixels at 7."""
    rng = np.random.default_rng(0)
    size = kind.input_size
    shape = (3, size, size)
    ramp = np.broadcast_to(np.linspace(0, 255, size, dtype=np.float32), shape)
    return [{INPUT_NAME: rng.uniform(0, 255, (1, *shape)).astype(np.float32)},
            {INPUT_NAME: np.stack([ramp] + [rng.uniform(0, 255, shape).astype(np.float32) for _ in range(6)])}]


def _export(path: Path, detector: nn.Module, kind: DetectorKind, max_batch: int, tolerance: float) -> Path:
    size = kind.input_size
    # a batch of 2 to trace with: at 1, torch.export specializes the batch axis of the full-range graph
    return export_onnx(detector, {INPUT_NAME: torch.zeros(2, 3, size, size)}, path, output_names=OUTPUT_NAMES,
                       checks=parity_checks(kind), max_batch=max_batch, tolerance=tolerance)
