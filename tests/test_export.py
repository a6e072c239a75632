"""dfguard.train.export: ONNX streams that, composed in ONNX Runtime, score like the PyTorch model."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from dfguard.config import to_dict
from dfguard.inference.checkpoint import load_model
from dfguard.inference.models import build_model
from dfguard.inference.spec import read_spec
from dfguard.onnx_export import ExportParityError
from dfguard.pipeline import LocalDetector
from dfguard.scoring import VerdictThresholds
from dfguard.train.config import load_preset
from dfguard.train.data import FrameDataset
from dfguard.train.export import export_model


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    dfguard = Path(sys.executable).with_name("dfguard")
    result = subprocess.run([str(dfguard), "export", str(trained / "best.pt"), "--out", str(out), "--max-batch", "64",
                             "--fake-at", "0.7", "--real-at", "0.2"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_export_writes_the_ensemble_models(exported):
    assert sorted(p.name for p in exported.iterdir()) == ["face_detector.onnx", "freq_stream.onnx", "fusion.onnx",
                                                           "rgb_stream.onnx", "serving_spec.json"]
    rgb = session(exported / "rgb_stream.onnx")
    assert [(i.name, i.type, i.shape[1:]) for i in rgb.get_inputs()] == [
        ("FACES", "tensor(uint8)", [3, 128, 128]), ("PARTS", "tensor(uint8)", [4, 3, 64, 64])]
    assert [o.name for o in session(exported / "fusion.onnx").get_outputs()] == ["EMBEDDING", "LOGIT"]
    assert isinstance(rgb.get_inputs()[0].shape[0], str)  # dynamic batch


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_streams_composed_score_like_pytorch(exported, trained, prepared, batch):
    model = load_model(trained / "best.pt").model
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
    spec = read_spec(exported)
    served = spec.scorer().frame_scores(embedding, logit)  # what the ensemble answers
    # the served probability is the nearer-centre decision of the PyTorch model (CDNet eq. 5)
    assert ((served > 0.5) == model.centers.is_fake(reference.embedding).numpy()).all()
    to_real, to_fake = (d.numpy() for d in model.centers.distances(reference.embedding))
    spread = float((model.centers.fake - model.centers.real).pow(2).sum())
    np.testing.assert_allclose(np.log(served / (1 - served)), spec.cluster_scale * (to_real - to_fake) / spread,
                               rtol=1e-3, atol=1e-3)
    assert (spec.score_rule, spec.crop.size, spec.crop.part_size, spec.cutoff) == ("cluster", 128, 64, 4)


def test_the_thresholds_given_to_export_reach_local_scoring(exported, trained):
    spec = read_spec(exported)
    assert spec.verdict == VerdictThresholds(fake_at=0.7, real_at=0.2)
    local = LocalDetector(trained / "best.pt", spec)
    assert local.scorer.thresholds == spec.verdict
    assert [local.scorer.thresholds.verdict(v) for v in (0.65, 0.7, 0.2, 0.3)] == ["uncertain", "fake", "real",
                                                                                   "uncertain"]
    assert LocalDetector(trained / "best.pt").scorer.thresholds == VerdictThresholds()  # without a spec: defaults
    other = dataclasses.replace(spec, center_fake=tuple(-c for c in spec.center_fake))
    with pytest.raises(ValueError, match="another checkpoint"):
        LocalDetector(trained / "best.pt", other)


@pytest.mark.slow  # two graphs through torch.export
def test_a_model_without_rgb_stream_exports_what_it_has(tmp_path):
    config = load_preset("tiny", ("model.rgb=null",))
    checkpoint = tmp_path / "freq_only.pt"
    torch.save({"config": to_dict(config), "model": build_model(config.model).state_dict(), "optimizer": None,
                "progress": {"stage": 1, "epoch": 1, "best_auc": 0.5, "history": []}}, checkpoint)
    spec = export_model(checkpoint, tmp_path / "out", detector=False)
    assert spec.models == ("freq_stream", "fusion") and spec.score_rule == "logit"
    assert [i.name for i in session(tmp_path / "out" / "fusion.onnx").get_inputs()] == ["FREQ_FEATURES"]


def test_a_parity_failure_fails_the_export(trained, tmp_path):
    with pytest.raises(ExportParityError, match="differs from PyTorch"):
        export_model(trained / "best.pt", tmp_path, tolerance=-1.0, detector=False)
    assert not list(tmp_path.glob("*.onnx"))


def test_a_clip_style_vit_backbone_trains_and_exports(prepared, tmp_path):
    """The clip preset's recipe (a ViT backbone built at the crop size, LayerNorm-only fine-tuning) on a tiny ViT:
    both stages train, and the exported streams reproduce PyTorch (export checks each graph and the composed
    embedding, and fails otherwise)."""
    from dfguard.train.trainer import Trainer

    config = load_preset("tiny", ("model.rgb.backbone=test_vit", "model.rgb.img_size=128",
                                  "model.rgb.trainable=layernorm", "stage1.epochs=1", "stage2.epochs=1"))
    best = Trainer(config, prepared, tmp_path / "run", progress=False).run()
    stage_two = best.parent / "stage2_best.pt"  # not necessarily best.pt: that is the stage that validated better
    spec = export_model(stage_two, tmp_path / "out", detector=False)
    assert spec.models == ("freq_stream", "fusion", "rgb_stream") and spec.stage == 2
    frozen = load_model(stage_two).model.rgb_stream.backbone.patch_embed.proj.weight
    assert not frozen.requires_grad  # the checkpoint rebuilds the same recipe
