"""Exporting PyTorch models to ONNX with a dynamic batch axis, and proving the export right before keeping it.

Every export (the face detector here; the RGB, frequency and fusion streams in ``dfguard.train``) goes through
``export_onnx``: it writes the file, runs it in ONNX Runtime on the given inputs and fails if any output differs
from PyTorch eager by more than the tolerance, so a broken export never reaches a model repository.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfguard.errors import DfguardError


class ExportParityError(DfguardError):
    """ONNX Runtime disagrees with PyTorch on an exported model."""


def export_onnx(model: nn.Module, examples: dict[str, torch.Tensor], path: Path, *, output_names: Sequence[str],
                checks: Sequence[dict[str, np.ndarray]], max_batch: int = 1024, tolerance: float = 1e-4) -> Path:
    """Export ``model`` (positional inputs named and ordered like ``examples``, batch first) to ``path`` and check
    ONNX Runtime against PyTorch on every input set of ``checks``.

    Raises:
        ExportParityError: an output differs from PyTorch by more than ``tolerance`` (the file is removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    dynamic = tuple({0: batch} for _ in examples)
    # the exporter narrates its passes on stdout, and warns that inputs sharing the batch axis share its name
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
        program = torch.onnx.export(model, tuple(examples.values()), None, input_names=list(examples),
                                    output_names=list(output_names), dynamic_shapes=dynamic, dynamo=True)
    program.save(str(path))
    try:
        check_parity(model, path, checks, tolerance)
    except ExportParityError:
        path.unlink(missing_ok=True)
        raise
    return path


def check_parity(model: nn.Module, path: Path, checks: Sequence[dict[str, np.ndarray]], tolerance: float) -> float:
    """Largest absolute difference between ONNX Runtime and PyTorch over ``checks``; raises above ``tolerance``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    worst = 0.0
    for inputs in checks:
        onnx_outputs = session.run(None, inputs)
        with torch.inference_mode():
            torch_outputs = model(*(torch.from_numpy(a) for a in inputs.values()))
        torch_outputs = torch_outputs if isinstance(torch_outputs, tuple) else (torch_outputs,)
        for name, ours, reference in zip(names, onnx_outputs, torch_outputs, strict=True):
            error = float(np.abs(ours - reference.numpy()).max())
            worst = max(worst, error)
            if not error <= tolerance:
                shapes = {k: v.shape for k, v in inputs.items()}
                raise ExportParityError(f"{path.name}: output {name!r} differs from PyTorch by {error:.3g} "
                                        f"(tolerance {tolerance:g}) for inputs {shapes}")
    return worst
