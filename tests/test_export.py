"""dfguard.train.export: ONNX streams that, composed in ONNX Runtime, score like the PyTorch model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from dfguard.config import to_dict
from dfguard.onnx_export import ExportParityError
from dfguard.scoring import VideoScorer
from dfguard.train.config import load_preset
from dfguard.train.data import FrameDataset
from dfguard.train.evaluate import load_checkpoint
from dfguard.train.export import export_model
from dfguard.train.models import build_model, cluster_score


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    dfguard = Path(sys.executable).with_name("dfguard")
    result = subprocess.run([str(dfguard), "export", str(trained / "best.pt"), "--out", str(out), "--max-batch", "64"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_export_writes_the_ensemble_models(exported):
    assert sorted(p.name for p in exported.iterdir()) == ["classifier.json", "face_detector.onnx", "freq_stream.onnx",
                                                           "fusion.onnx", "rgb_stream.onnx"]
    rgb = session(exported / "rgb_stream.onnx")
    assert [(i.name, i.type, i.shape[1:]) for i in rgb.get_inputs()] == [
        ("FACES", "tensor(uint8)", [3, 128, 128]), ("PARTS", "tensor(uint8)", [4, 3, 64, 64])]
    assert [o.name for o in session(exported / "fusion.onnx").get_outputs()] == ["EMBEDDING", "LOGIT"]
    assert isinstance(rgb.get_inputs()[0].shape[0], str)  # dynamic batch


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_streams_composed_score_like_pytorch(exported, trained, prepared, batch):
    model, _, _ = load_checkpoint(trained / "best.pt")
    frames = FrameDataset(prepared, "test")
    samples = torch.utils.data.default_collate([frames[i] for i in range(batch)])
    rgb = session(exported / "rgb_stream.onnx").run(None, {"FACES": samples["faces"].numpy(),
                                                           "PARTS": samples["parts"].numpy()})[0]
    freq = session(exported / "freq_stream.onnx").run(None, {"DCT_MAP": samples["dct_map"].numpy(),
                                                             "FREQ_VECTOR": samples["freq_vector"].numpy()})[0]
    embedding, logit = session(exported / "fusion.onnx").run(None, {"RGB_FEATURES": rgb, "FREQ_FEATURES": freq})
    with torch.no_grad():
        reference = model(samples["faces"], samples["parts"], samples["dct_map"], samples["freq_vector"])
    assert np.abs(embedding - reference.embedding.numpy()).max() < 1e-4
    assert logit.shape == (batch, 1) and np.abs(logit[:, 0] - reference.logit.numpy()).max() < 1e-4
    classifier = json.loads((exported / "classifier.json").read_text())
    served = VideoScorer.from_parameters(classifier).frame_scores(embedding, logit)  # what the ensemble answers
    np.testing.assert_allclose(served, cluster_score(model, reference.embedding).numpy(), atol=1e-4)
    assert classifier["score"] == "cluster" and classifier["image_size"] == 128 and classifier["cutoff"] == 4


def test_a_model_without_rgb_stream_exports_what_it_has(tmp_path):
    config = load_preset("tiny", ("model.rgb=null",))
    checkpoint = tmp_path / "freq_only.pt"
    torch.save({"config": to_dict(config), "model": build_model(config.model).state_dict(), "optimizer": None,
                "progress": {"stage": 1, "epoch": 1, "best_auc": 0.5, "history": []}}, checkpoint)
    parameters = export_model(checkpoint, tmp_path / "out", detector=False)
    assert parameters["models"] == ["freq_stream", "fusion"] and parameters["score"] == "logit"
    assert [i.name for i in session(tmp_path / "out" / "fusion.onnx").get_inputs()] == ["FREQ_FEATURES"]


def test_a_parity_failure_fails_the_export(trained, tmp_path):
    with pytest.raises(ExportParityError, match="differs from PyTorch"):
        export_model(trained / "best.pt", tmp_path, tolerance=-1.0, detector=False)
    assert not list(tmp_path.glob("*.onnx"))
