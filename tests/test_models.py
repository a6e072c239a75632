"""dfguard.train.models / losses / config: presets, shapes, local weights, and the losses against naive loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import timm
import torch

from dfguard.config import ConfigError
from dfguard.inference.models import build_model
from dfguard.scoring import VideoScorer
from dfguard.train.config import PRESETS_DIR, load_preset
from dfguard.train.losses import cluster_loss, supervised_contrastive_loss

PRESETS = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def inputs(config, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    s, p = config.image_size, config.part_size
    return {"faces": torch.randint(0, 256, (batch, 3, s, s), dtype=torch.uint8, generator=generator),
            "parts": torch.randint(0, 256, (batch, 4, 3, p, p), dtype=torch.uint8, generator=generator),
            "dct_map": torch.randn(batch, 1, s, s, generator=generator) * 30,
            "freq_vector": torch.rand(batch, 128, generator=generator) * 3}


def test_the_papers_presets_train_with_the_papers_settings():
    assert PRESETS == ["cdnet", "clip", "dual_stream", "freq_only", "full", "real", "rgb_only", "tiny"]
    cdnet, dual = load_preset("cdnet"), load_preset("dual_stream")
    assert (cdnet.stage1.lr, cdnet.stage1.batch_size, cdnet.stage1.epochs, cdnet.stage2.epochs) == (1e-4, 32, 20, 20)
    assert (cdnet.stage2.alpha, cdnet.stage2.beta, cdnet.model.embedding) == (1e-4, 0.4, 200)
    assert cdnet.model.rgb.parts and cdnet.model.freq.use_vector
    assert (dual.model.rgb.backbone, dual.model.freq.cutoff, dual.stage1.temperature) == ("efficientnet_b4", 4, 0.07)
    assert dual.stage2.epochs == 0 and not dual.model.rgb.parts
    real = load_preset("real")  # real videos alone: self-blends of face, inner face and lower face, uploads' wear
    assert real.data.fakes == "self-blend" and set(real.data.blend.regions) == {"face", "inner", "lower"}
    assert real.stage2.epochs == 0 and real.data.augment.jpeg > 0


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_and_gives_a_200_d_embedding(name):
    config = load_preset(name)
    model = build_model(config.model).eval()
    with torch.inference_mode():
        out = model(**inputs(config.model))
    assert out.embedding.shape == (2, 200) and out.logit.shape == (2,)
    assert torch.isfinite(out.embedding).all()
    assert (model.rgb_stream is None) == (config.model.rgb is None)
    assert (model.freq_stream is None) == (config.model.freq is None)


def test_tiny_trains_a_step():
    config = load_preset("tiny").model
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch, labels = inputs(config, batch=8), torch.tensor([0, 1] * 4)
    losses = []
    for _ in range(5):
        out = model(**batch)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logit, labels.float()) \
            + supervised_contrastive_loss(out.embedding, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_missing_inputs_are_named():
    model = build_model(load_preset("tiny").model)
    batch = inputs(model.config)
    with pytest.raises(ValueError, match="part encoders: pass parts"):
        model(batch["faces"], None, batch["dct_map"], batch["freq_vector"])
    with pytest.raises(ValueError, match="pass dct_map"):
        model(batch["faces"], batch["parts"], None, batch["freq_vector"])


def test_backbone_weights_load_from_a_local_file(tmp_path):
    source = timm.create_model("test_efficientnet", num_classes=0)
    path = tmp_path / "imagenet.pth"
    torch.save(source.state_dict(), path)
    model = build_model(load_preset("tiny", (f"model.rgb.pretrained_file={path}",)).model)
    for name, value in source.state_dict().items():
        assert torch.equal(model.rgb_stream.backbone.state_dict()[name], value), name
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model(load_preset("tiny", (f"model.rgb.pretrained_file={tmp_path / 'nope.pth'}",)).model)


TINY_VIT = ("model.rgb.backbone=test_vit", "model.rgb.img_size=128", "model.rgb.trainable=layernorm")


def test_layernorm_only_fine_tuning_moves_only_the_layernorms_of_the_backbone():
    """The CLIP recipe on a tiny ViT: a few training steps change the backbone's LayerNorms and everything after
    the backbone, and not one other backbone weight."""
    assert load_preset("clip").model.rgb.trainable == "layernorm"
    config = load_preset("tiny", TINY_VIT).model
    model = build_model(config)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch, labels = inputs(config, batch=8), torch.tensor([0, 1] * 4)
    for _ in range(3):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**batch).logit, labels.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    backbone = model.rgb_stream.backbone
    norms = {f"rgb_stream.backbone.{n}.{w}" for n, m in backbone.named_modules() if isinstance(m, torch.nn.LayerNorm)
             for w in ("weight", "bias")}
    changed = {name for name, value in model.state_dict().items() if not torch.equal(value, before[name])}
    in_backbone = {name for name in changed if name.startswith("rgb_stream.backbone.")}
    assert in_backbone and in_backbone <= norms
    assert any(name.startswith("rgb_stream.project") for name in changed) and any(
        name.startswith("fusion") or name.startswith("head") for name in changed)


def test_presets_and_configs_are_checked():
    with pytest.raises(ValueError, match=r"unknown preset 'huge'.*tiny"):
        load_preset("huge")
    with pytest.raises(ConfigError, match="at least one stream"):
        load_preset("tiny", ("model.rgb=null", "model.freq=null"))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) model.rgb.backbon"):
        load_preset("tiny", ("model.rgb.backbon=resnet18",))


# --- losses against naive transcriptions of their formulas ------------------------------------------------

def naive_supcon(z: np.ndarray, labels: np.ndarray, tau: float) -> float:
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    losses = []
    for a in range(len(z)):
        positives = [p for p in range(len(z)) if p != a and labels[p] == labels[a]]
        if not positives:
            continue
        denominator = sum(math.exp(z[a] @ z[k] / tau) for k in range(len(z)) if k != a)
        losses.append(-np.mean([math.log(math.exp(z[a] @ z[p] / tau) / denominator) for p in positives]))
    return float(np.mean(losses))


@pytest.mark.parametrize("labels", [[0, 1, 0, 1, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0], [0, 1, 2, 2]])
def test_supervised_contrastive_equals_the_formula(rng, labels):
    z = rng.normal(size=(len(labels), 16))
    ours = supervised_contrastive_loss(torch.tensor(z), torch.tensor(labels), temperature=0.07)
    assert ours.item() == pytest.approx(naive_supcon(z, np.array(labels), 0.07), rel=1e-5)


def test_supervised_contrastive_rewards_clusters(rng):
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    clustered = torch.tensor(np.repeat([[1.0, 0.0], [0.0, 1.0]], 3, axis=0)) + 0.01 * torch.tensor(
        rng.normal(size=(6, 2)))
    mixed = torch.tensor(rng.normal(size=(6, 2)))
    assert supervised_contrastive_loss(clustered, labels) < supervised_contrastive_loss(mixed, labels)


def test_cluster_loss_equals_the_formula(rng):
    features, labels = rng.normal(size=(10, 5)), rng.integers(0, 2, 10)
    real, fake, beta = rng.normal(size=5), rng.normal(size=5) + 1, 0.4
    spread = np.sum((fake - real) ** 2)
    l_f = sum(max(np.sum((fake - f) ** 2) - beta * spread, 0) for f, y in zip(features, labels, strict=True) if y == 1)
    l_r = sum(max(np.sum((real - f) ** 2) - beta * spread, 0) for f, y in zip(features, labels, strict=True) if y == 0)
    expected = (l_f + l_r) / (len(features) * spread)
    ours = cluster_loss(torch.tensor(features), torch.tensor(labels), torch.tensor(real), torch.tensor(fake), beta)
    assert ours.item() == pytest.approx(expected, rel=1e-6)


def test_centres_follow_eq_1_and_4_and_decide_by_the_nearer_one():
    model = build_model(load_preset("tiny").model)
    embeddings = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]]).repeat(1, 100)[:, :200]
    labels = torch.tensor([0, 0, 1, 1])
    model.centers.reset(embeddings, labels)
    assert torch.allclose(model.centers.real, embeddings[:2].mean(0))
    before = model.centers.fake.clone()
    model.centers.update(embeddings[2:] + 1.0, labels[2:], alpha=0.25)
    assert torch.allclose(model.centers.fake, 0.75 * before + 0.25 * (embeddings[2:] + 1.0).mean(0))
    assert torch.allclose(model.centers.real, embeddings[:2].mean(0))  # no real sample in that batch
    assert model.centers.is_fake(embeddings).tolist() == [False, False, True, True]
    served = VideoScorer("cluster", model.centers.real.numpy(), model.centers.fake.numpy())
    assert ((served.frame_scores(embeddings.numpy(), None) > 0.5) == model.centers.is_fake(embeddings).numpy()).all()
