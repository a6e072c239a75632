"""The model repository's two variants agree (same models, tensor names, types and shapes; identical ensembles),
and the GPU export builds TensorRT plans or says why it cannot."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from dfguard.onnx_export import export_onnx
from dfguard.train.tensorrt import batch_profile, tensorrt_builder, trtexec_command

REPOSITORY = Path(__file__).resolve().parents[1] / "model_repository"
ENSEMBLES = ("deepfake_video", "deepfake_image")
STREAM = "deepfake_stream"  # a front door too: a decoupled Python model calling deepfake_video's steps by BLS


def load(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def variant(model: str, target: str) -> model_config_pb2.ModelConfig:
    """The config tritonserver loads for ``target``: cpu reads configs/cpu.pbtxt and falls back to config.pbtxt."""
    cpu = REPOSITORY / model / "configs" / "cpu.pbtxt"
    return load(cpu if target == "cpu" and cpu.is_file() else REPOSITORY / model / "config.pbtxt")


def tensors(config: model_config_pb2.ModelConfig) -> dict[str, tuple[int, list[int], list[int]]]:
    """name → (data type, dims, full dims: with the batch dimension -1 in front for a batching model), the two
    shapes Triton's ensemble validation compares (``ValidateTensorConsistency``)."""
    batch = [-1] if config.max_batch_size > 0 else []
    return {t.name: (t.data_type, list(t.dims), batch + list(t.dims)) for t in [*config.input, *config.output]}


def matches(a: list[int], b: list[int]) -> bool:
    """Triton's CompareDimsWithWildcard: same rank, equal sizes or -1 on either side."""
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b, strict=True))


def consistent(a: tuple[int, list[int], list[int]], b: tuple[int, list[int], list[int]]) -> bool:
    """What the server checks between a tensor's producer and each consumer when it loads an ensemble."""
    return a[0] == b[0] and (matches(a[1], b[1]) or matches(a[2], b[2]))


MODELS = sorted(p.parent.name for p in REPOSITORY.glob("*/config.pbtxt") if p.parent.name not in (*ENSEMBLES, STREAM))
CALLED_BY_BLS = {"face_detector": "face_finder"}  # model → the step that calls it (not an ensemble step)
PADDED = {"face_finder": ("FACES", "PARTS")}  # outputs with max(N, 1) rows: a TensorRT plan takes no batch of 0


def test_every_model_has_a_gpu_config_and_the_ensembles_use_them_all():
    used = set()
    for ensemble in ENSEMBLES:
        config = load(REPOSITORY / ensemble / "config.pbtxt")
        assert config.platform == "ensemble" and not (REPOSITORY / ensemble / "configs").exists()
        used |= {step.model_name for step in config.ensemble_scheduling.step}
    models_with_a_cpu_config = {p.parts[-3] for p in REPOSITORY.glob("*/configs/cpu.pbtxt")}
    assert models_with_a_cpu_config <= set(MODELS) and used | set(CALLED_BY_BLS) == set(MODELS)
    assert set(CALLED_BY_BLS.values()) <= used and not set(CALLED_BY_BLS) & used


def test_the_stream_takes_and_answers_what_deepfake_video_does():
    """deepfake_stream's last response equals deepfake_video's answer: the same inputs (and CHUNK_FRAMES), the
    same outputs with the same types and shapes (and FRAME_START, FINAL); one config serves both variants, and
    every step it calls by BLS is one of deepfake_video's."""
    stream, video = load(REPOSITORY / STREAM / "config.pbtxt"), load(REPOSITORY / "deepfake_video" / "config.pbtxt")
    assert stream.model_transaction_policy.decoupled and not (REPOSITORY / STREAM / "configs").exists()
    assert tensors(stream) == tensors(video) | {
        "CHUNK_FRAMES": (model_config_pb2.TYPE_INT32, [1], [1]), "FRAME_START": (model_config_pb2.TYPE_INT32, [1], [1]),
        "FINAL": (model_config_pb2.TYPE_BOOL, [1], [1])}
    source = (Path(__file__).resolve().parents[1] / "dfguard" / "serving" / "steps.py").read_text()
    stream_class = source[source.index("class DeepfakeStream"):]
    called = set(re.findall(r'call_model\("(\w+)"', stream_class))
    steps = {step.model_name for step in video.ensemble_scheduling.step}
    assert called == {"video_probe", "video_decode", "dct_highpass", "rgb_stream", "freq_stream", "fusion"} <= steps
    assert "run_face_detector" in stream_class  # and face_detector, as face_finder calls it


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_tensorrt_steps_never_get_an_empty_batch(ensemble):
    """A video without faces (N = 0) must still run every TensorRT step of the GPU variant: those steps may only
    consume face_finder's padded outputs (max(N, 1) rows) or what other steps make of them, never the N-row ones."""
    config = load(REPOSITORY / ensemble / "config.pbtxt")
    padded: set[str] = set()
    for step in config.ensemble_scheduling.step:
        gpu = variant(step.model_name, "gpu")
        inputs = set(step.input_map.values())
        if gpu.platform == "tensorrt_plan":
            assert inputs <= padded, (step.model_name, inputs - padded)
        made_of_padded = bool(inputs) and inputs <= padded
        padded |= {value for key, value in step.output_map.items()
                   if key in PADDED.get(step.model_name, ()) or made_of_padded}
    assert {"embedding", "logit"} <= padded  # the classifier gets the padded rows and the N-row face lists


def test_the_gpu_detector_takes_the_default_detector_and_face_finder_batches():
    from dfguard.faces.settings import DetectorConfig
    from dfguard.faces.weights import detector_kind

    kind = detector_kind(DetectorConfig().name)
    detector = tensors(variant("face_detector", "gpu"))
    assert detector["DETECTOR_INPUT"][1] == [3, kind.input_size, kind.input_size]
    assert detector["REGRESSORS"][1] == [kind.anchors, 16] and detector["SCORES"][1] == [kind.anchors, 1]
    finder = variant("face_finder", "gpu")
    assert int(finder.parameters["detector_batch"].string_value) <= variant("face_detector", "gpu").max_batch_size


@pytest.mark.parametrize("model", MODELS)
def test_cpu_and_gpu_variants_have_the_same_tensor_names_and_types(model):
    cpu, gpu = tensors(variant(model, "cpu")), tensors(variant(model, "gpu"))
    assert {k: v[0] for k, v in cpu.items()} == {k: v[0] for k, v in gpu.items()}


@pytest.mark.parametrize("target", ["cpu", "gpu"])
@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_the_server_would_accept_every_ensemble_tensor(ensemble, target):
    """Producer and consumers of each ensemble tensor agree in type and shape as Triton requires at load."""
    config = load(REPOSITORY / ensemble / "config.pbtxt")
    known = {t.name: tensors(config)[t.name] for t in config.input}
    for step in config.ensemble_scheduling.step:
        step_tensors = tensors(variant(step.model_name, target))
        for key, value in step.input_map.items():
            assert consistent(known[value], step_tensors[key]), (step.model_name, key, known[value],
                                                                 step_tensors[key])
        for key, value in step.output_map.items():
            known[value] = step_tensors[key]
    for output in config.output:
        assert consistent(known[output.name], tensors(config)[output.name]), output.name


def test_gpu_batch_sizes_hold_the_largest_video():
    """The model steps' batch is a video's faces: at most faces_per_frame(F) · F for F up to max_frames."""
    from dfguard.faces.settings import TrackConfig

    max_frames = int(load(REPOSITORY / "video_probe" / "config.pbtxt").parameters["max_frames"].string_value)
    tracks = TrackConfig()
    largest = max(frames * tracks.faces_per_frame(frames) for frames in range(1, max_frames + 1))
    assert largest == tracks.max_video_faces
    for model in MODELS:
        config = variant(model, "gpu")
        if config.platform == "tensorrt_plan":
            assert config.max_batch_size >= largest, model
            assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


def test_dali_pipeline_batch_size_is_the_configs():
    config = variant("video_decode", "gpu")
    assert config.backend == "dali"
    tree = ast.parse((REPOSITORY / "video_decode" / "1" / "dali.py").read_text())
    decorator = next(d for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) for d in node.decorator_list
                     if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "pipeline_def")
    batch_size = next(k.value.value for k in decorator.keywords if k.arg == "batch_size")
    assert batch_size == config.max_batch_size


def test_batch_profile_spans_one_to_max_batch_over_the_graphs_inputs(tmp_path):
    class TwoInputs(torch.nn.Module):
        def forward(self, faces: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
            return faces.float().mean(dim=(1, 2, 3)) + vector.sum(dim=1)

    inputs = {"FACES": np.zeros((2, 3, 16, 16), np.uint8), "VECTOR": np.ones((2, 128), np.float32)}
    path = export_onnx(TwoInputs(), {k: torch.from_numpy(v) for k, v in inputs.items()}, tmp_path / "m.onnx",
                       output_names=["OUT"], checks=[inputs], max_batch=64)
    profile = batch_profile(path, 64)
    assert profile == {"FACES": ((1, 3, 16, 16), (16, 3, 16, 16), (64, 3, 16, 16)),
                       "VECTOR": ((1, 128), (16, 128), (64, 128))}
    command = trtexec_command(path, tmp_path / "m.plan", profile, fp16=True)
    assert "--minShapes=FACES:1x3x16x16,VECTOR:1x128" in command and "--maxShapes=FACES:64x3x16x16,VECTOR:64x128" \
        in command and "--fp16" in command


@pytest.mark.skipif(tensorrt_builder() is not None, reason="TensorRT is installed here")
def test_gpu_export_without_tensorrt_says_so_and_writes_nothing(trained, tmp_path):
    repository = tmp_path / "repository"
    for step in ("face_detector", "rgb_stream", "freq_stream", "fusion"):
        (repository / step / "configs").mkdir(parents=True)
        (repository / step / "configs" / "cpu.pbtxt").write_text((REPOSITORY / step / "configs" / "cpu.pbtxt")
                                                                  .read_text())
    command = [str(Path(sys.executable).with_name("dfguard")), "export", str(trained / "best.pt"),
               "--repository", str(repository), "--target", "gpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "TensorRT is not installed" in done.stderr
    assert not list(repository.rglob("*.plan")) and not list(repository.rglob("*.onnx"))
