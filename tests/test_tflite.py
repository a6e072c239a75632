"""dfguard.faces.tflite and tflite_net: a TFLite graph, sparse weights included, run in PyTorch as the file says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from photos import astronaut, grace_hopper

from dfguard.faces import tflite
from dfguard.faces.blazeface import load_blazeface, load_detector
from dfguard.faces.detect import detector_input, run_detector
from dfguard.faces.tflite_net import TFLiteNet, load_tflite_net, same_padding
from dfguard.faces.weights import DETECTORS, SHORT_RANGE, detector_kind

FULL_RANGE = DETECTORS["blazeface_full_range"]


def test_the_graph_run_from_the_file_equals_the_hand_written_short_range_network():
    """Two independent readings of one file: the generic graph runner and the BlazeFace module written out by
    hand (itself held to mediapipe in test_faces)."""
    net = load_tflite_net(SHORT_RANGE.tflite_path())
    pixels = torch.from_numpy(detector_input([grace_hopper(), astronaut()]))
    with torch.inference_mode():
        regressors, scores = load_blazeface()(pixels)
        outputs = net(pixels / 127.5 - 1.0)
    by_width = {o.shape[-1]: o for o in outputs}
    assert (by_width[16] / 128 - regressors).abs().max() < 1e-5
    assert (torch.sigmoid(by_width[1]) - scores).abs().max() < 1e-5


def test_full_range_weights_are_densified_and_dequantized_into_the_graph():
    graph = tflite.read_graph(FULL_RANGE.tflite_path())
    assert {op.code for op in graph.operators}.isdisjoint({tflite.DENSIFY, tflite.DEQUANTIZE})  # folded
    weights = [graph.constants[op.inputs[1]] for op in graph.operators if op.code == tflite.CONV_2D]
    assert all(w.dtype == np.float32 and w.shape == graph.shapes[op.inputs[1]]
               for w, op in zip(weights, [o for o in graph.operators if o.code == tflite.CONV_2D], strict=True))
    zeros = np.mean([float((w == 0).mean()) for w in weights])
    assert 0.3 < zeros < 0.95  # pruned 1×1 convolutions: most weights zero, each kept one at its index


def test_full_range_outputs_the_anchor_layout_its_decoder_expects():
    with torch.inference_mode():
        regressors, scores = load_detector(FULL_RANGE)(torch.zeros(3, 3, 192, 192))
    assert regressors.shape == (3, FULL_RANGE.anchors, 16) == (3, 2304, 16) and scores.shape == (3, 2304, 1)
    assert ((scores >= 0) & (scores <= 1)).all()


@pytest.mark.slow  # a fresh torch.export of the network (seconds)
def test_full_range_onnx_export_equals_pytorch_on_real_frames(tmp_path):
    import onnxruntime

    from dfguard.faces.export import export_detector

    path = export_detector(tmp_path / "full_range.onnx", detector=load_detector(FULL_RANGE), kind=FULL_RANGE,
                           max_batch=16)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = detector_input([grace_hopper(), astronaut(), np.ascontiguousarray(np.rot90(astronaut()))], 192)
    for onnx, eager in zip(session.run(None, {"DETECTOR_INPUT": batch}),
                           run_detector(batch, load_detector(FULL_RANGE), FULL_RANGE), strict=True):
        assert np.abs(onnx - eager).max() < 1e-4


def test_a_graph_with_an_operator_it_cannot_run_is_refused():
    graph = tflite.Graph({}, ["x", "y"], [(1, 8, 8, 3), (1, 8, 8, 3)], [tflite.Operator(99, (0,), (1,))], (0,), (1,))
    with pytest.raises(ValueError, match=r"builtin codes \[99\]"):
        TFLiteNet(graph)


@pytest.mark.parametrize(("size", "kernel", "stride", "expected"), [(128, 5, 2, (1, 2)), (64, 3, 1, (1, 1)),
                                                                     (7, 3, 2, (1, 1)), (8, 1, 1, (0, 0))])
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    before, after = same_padding(size, kernel, stride, 1)
    assert (before, after) == expected and (size + before + after - kernel) // stride + 1 == -(-size // stride)


def test_an_unknown_detector_lists_the_known_ones():
    with pytest.raises(ValueError, match="blazeface_full_range"):
        detector_kind("retinaface")
