"""The model's inputs from uint8 face crops: the frequency features (``dfguard.kernels``) and the tensors.

``frequency_features`` is the code of the ensemble's ``dct_highpass`` step, of training and of export, so the
three see the same numbers; it needs only NumPy (or CuPy) and the kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dfguard.kernels import array_module, dct_highpass, freq_vector

if TYPE_CHECKING:
    import torch


def frequency_features(faces: Any, cutoff: int) -> tuple[Any, Any]:
    """DCT high-pass maps ``[B, 1, S, S]`` and frequency vectors ``[B, 128]`` of uint8 faces ``[B, 3, S, S]``
    (NumPy arrays on the CPU kernel, CuPy arrays on the GPU one; the result lives where the input does)."""
    rgb = array_module(faces).ascontiguousarray(faces.transpose(0, 2, 3, 1))
    highpass = dct_highpass(rgb, cutoff=cutoff)
    # reshape, not [:, None]: a None axis gets stride 0, which DLPack consumers (Triton) refuse as non-contiguous
    return highpass.reshape(len(highpass), 1, *highpass.shape[1:]), freq_vector(rgb)


def model_inputs(faces: Any, parts: Any, cutoff: int) -> dict[str, torch.Tensor]:
    """The model's keyword inputs (torch tensors) for a batch of uint8 crops (NumPy arrays)."""
    import torch

    dct_map, vector = frequency_features(faces, cutoff)
    return {"faces": torch.from_numpy(faces), "parts": torch.from_numpy(parts), "dct_map": torch.from_numpy(dct_map),
            "freq_vector": torch.from_numpy(vector)}
