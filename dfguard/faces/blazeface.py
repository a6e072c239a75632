"""BlazeFace short-range (MediaPipe's face detector) as a PyTorch module, with weights read from mediapipe's wheel.

Architecture (read off ``face_detection_short_range.tflite``): a 5×5 stride-2 stem, 16 BlazeBlocks (3×3
depthwise + 1×1 pointwise, residual; stride-2 blocks max-pool the skip path; wider blocks zero-pad its
channels), and four 1×1 heads on the 16×16 (88 ch) and 8×8 (96 ch) maps. Paper: Bazarevsky et al., "BlazeFace:
Sub-millisecond Neural Face Detection on Mobile GPUs", 2019.

The network takes float32 RGB ``[N, 3, 128, 128]`` in 0..255 (normalisation to [-1, 1] is inside, so the ONNX
graph takes pixels) and returns ``(regressors [N, 896, 16], scores [N, 896, 1])``: face probabilities (the
sigmoid MediaPipe applies first when decoding) and box/keypoint offsets in units of the input size (MediaPipe's
raw regressors / 128), so every output is O(1) and an exported graph can be held to 1e-4; decoded outside the
network (``dfguard.faces.decode``) so it exports to ONNX and
TensorRT.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .tflite import read_constant_tensors
from .tflite_net import load_tflite_net
from .weights import INPUT_SIZE, SHORT_RANGE, DetectorKind, cached_artifact, publish, tflite_path

# (in_channels, out_channels, stride) of the 16 BlazeBlocks, in graph order
BLOCKS: tuple[tuple[int, int, int], ...] = (
    (24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2), (48, 56, 1), (56, 64, 1),
    (64, 72, 1), (72, 80, 1), (80, 88, 1), (88, 96, 2), (96, 96, 1), (96, 96, 1), (96, 96, 1), (96, 96, 1),
)
FIRST_STRIDE16_BLOCK = 11  # blocks before it produce the 16×16 map, the rest the 8×8 map


class BlazeBlock(nn.Module):
    """Depthwise 3×3 + pointwise 1×1 with a residual; TFLite "SAME" padding reproduced exactly."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = out_channels - in_channels
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride, padding=0 if stride == 2 else 1,
                                   groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        # The skip path of a wider block is zero-padded to out_channels. Done as a fixed 1×1 convolution with an
        # identity block (exact: x·1 + 0), not a channel Pad: ONNX Runtime then fuses it with the residual Add
        # and keeps its blocked layout, instead of reordering around each Pad (10 % faster on a CPU).
        widen = torch.zeros(out_channels, in_channels, 1, 1)
        widen[torch.arange(in_channels), torch.arange(in_channels)] = 1.0
        self.register_buffer("widen", widen if self.extra_channels else None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output ``relu(pointwise(depthwise(x)) + skip(x))``."""
        if self.stride == 2:
            skip = F.max_pool2d(x, 2)
            x = F.pad(x, (0, 1, 0, 1))  # SAME for an even input, kernel 3, stride 2: pad after only
        else:
            skip = x
        if self.widen is not None:
            skip = F.conv2d(skip, self.widen)
        return F.relu(self.pointwise(self.depthwise(x)) + skip)


class BlazeFace(nn.Module):
    """BlazeFace short-range: pixels ``[N, 3, 128, 128]`` → ``(regressors [N, 896, 16], scores [N, 896, 1])``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 24, 5, stride=2)
        self.blocks = nn.ModuleList(BlazeBlock(*spec) for spec in BLOCKS)
        self.classifier_16x16 = nn.Conv2d(88, 2, 1)
        self.classifier_8x8 = nn.Conv2d(96, 6, 1)
        self.regressor_16x16 = nn.Conv2d(88, 32, 1)
        self.regressor_8x8 = nn.Conv2d(96, 96, 1)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchor offsets and face probabilities (a tuple, so it exports to ONNX/TensorRT/TorchScript)."""
        x = F.pad(pixels / 127.5 - 1.0, (1, 2, 1, 2))  # SAME for 128 → 64 with a 5×5 kernel
        x = F.relu(self.stem(x))
        for block in self.blocks[:FIRST_STRIDE16_BLOCK]:
            x = block(x)
        fine = x
        for block in self.blocks[FIRST_STRIDE16_BLOCK:]:
            x = block(x)
        coarse = x
        scores = torch.cat([_per_anchor(self.classifier_16x16(fine), 1), _per_anchor(self.classifier_8x8(coarse), 1)],
                           dim=1)
        boxes = torch.cat([_per_anchor(self.regressor_16x16(fine), 16), _per_anchor(self.regressor_8x8(coarse), 16)],
                          dim=1)
        return boxes / INPUT_SIZE, torch.sigmoid(scores)


def _per_anchor(head: torch.Tensor, values: int) -> torch.Tensor:
    """``[N, A·values, H, W]`` → ``[N, H·W·A, values]`` in TFLite's order (cells row-major, anchors innermost)."""
    return head.permute(0, 2, 3, 1).reshape(head.shape[0], -1, values)


def _tflite_names() -> dict[str, str]:
    """Our state-dict key → the TFLite tensor name it comes from."""
    names = {"stem": "conv2d", "classifier_16x16": "classificator_8", "classifier_8x8": "classificator_16",
             "regressor_16x16": "regressor_8", "regressor_8x8": "regressor_16"}
    for i in range(len(BLOCKS)):
        names[f"blocks.{i}.depthwise"] = "depthwise_conv2d" + (f"_{i}" if i else "")
        names[f"blocks.{i}.pointwise"] = f"conv2d_{i + 1}"
    mapping = {}
    for ours, theirs in names.items():
        mapping[f"{ours}.weight"] = f"{theirs}/Kernel"
        mapping[f"{ours}.bias"] = f"{theirs}/Bias"
    return mapping


def state_dict_from_tflite(path: Path) -> dict[str, torch.Tensor]:
    """Convert the TFLite weights to our state dict (kernels OHWI → OIHW, depthwise 1HWC → C1HW)."""
    tensors = read_constant_tensors(path)
    state = {}
    for key, name in _tflite_names().items():
        if name not in tensors:
            raise ValueError(f"{path} has no tensor {name!r}: not the BlazeFace short-range model")
        value = tensors[name]
        if value.ndim == 4:
            value = value.transpose(3, 0, 1, 2) if ".depthwise." in key else value.transpose(0, 3, 1, 2)
        state[key] = torch.from_numpy(np.ascontiguousarray(value))
    return state


def load_blazeface(path: Path | None = None) -> BlazeFace:
    """BlazeFace in eval mode with mediapipe's weights, converted once and cached by the source file's hash."""
    source = Path(path) if path else tflite_path()
    cached = cached_artifact(source, ".pt")
    model = BlazeFace()
    if cached.exists():
        state = torch.load(cached, map_location="cpu", weights_only=True)
    else:
        state = state_dict_from_tflite(source)
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        torch.save(state, partial)
        publish(partial, cached)
    model.load_state_dict(state, strict=True)
    return model.eval()


class GraphBlazeFace(nn.Module):
    """A BlazeFace model run from its own TFLite graph (``TFLiteNet``; full range, whose architecture is read from
    the file), with ``BlazeFace``'s conventions: pixels ``[N, 3, S, S]`` in 0..255 → ``(regressors / S,
    face probabilities)``."""

    def __init__(self, kind: DetectorKind) -> None:
        super().__init__()
        self.net = load_tflite_net(kind.tflite_path())
        self.size = kind.input_size
        shapes = [self.net.graph.shapes[k] for k in self.net.graph.outputs]
        self.regressor_output = next(k for k, shape in enumerate(shapes) if shape[-1] == 16)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchor offsets in units of the input size and face probabilities."""
        outputs = self.net(pixels / 127.5 - 1.0)
        regressors, scores = outputs[self.regressor_output], outputs[1 - self.regressor_output]
        return regressors / self.size, torch.sigmoid(scores)


def load_detector(kind: DetectorKind = SHORT_RANGE) -> nn.Module:
    """The PyTorch module of detector ``kind`` in eval mode: the hand-written ``BlazeFace`` for short range, its
    TFLite graph for the others."""
    return load_blazeface() if kind == SHORT_RANGE else GraphBlazeFace(kind).eval()
