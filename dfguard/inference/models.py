"""The detector: RGB stream, frequency stream, fusion into a 200-d embedding, and the two classifiers.

The three parts are separate modules with plain tensor inputs so each exports to its own ONNX/TensorRT model
(the ensemble's ``rgb_stream``, ``freq_stream`` and ``fusion`` steps); normalisation lives inside them, so
they take what the wire carries: uint8 crops, float32 DCT maps and frequency vectors.

Papers: "Generalizable Deepfake Detection via Artifact-Invariant Representation Learning" (dual stream) and
"CDNet: Cluster Decision for Deepfake Detection Generalization" (parts, frequency vector, cluster classifier).
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
from torch import nn

from dfguard.kernels import FREQ_VECTOR_SIZE

from .config import FreqStreamConfig, ModelConfig, RGBStreamConfig

NUM_PARTS = 4
DCT_MAP_SCALE = 1 / 32  # DCT high-pass maps of 8-bit faces span about ±100


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 stride-2 convolution, batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def small_cnn(in_channels: int, channels: tuple[int, ...], out_features: int) -> nn.Sequential:
    """A light CNN: stride-2 blocks, global average pooling, a linear projection."""
    layers, previous = [], in_channels
    for width in channels:
        layers.append(conv_block(previous, width))
        previous = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, out_features))


def create_backbone(config: RGBStreamConfig) -> nn.Module:
    """A timm backbone without its classifier; ImageNet weights from ``pretrained_file`` when given (timm's own
    loading code reads the local file; nothing is downloaded)."""
    pretrained = config.pretrained_file is not None
    overlay = {"file": str(config.pretrained_file)} if pretrained else None
    if pretrained and not config.pretrained_file.is_file():
        raise FileNotFoundError(f"pretrained_file {config.pretrained_file} does not exist")
    size = {"img_size": config.img_size} if config.img_size is not None else {}
    backbone = timm.create_model(config.backbone, pretrained=pretrained, pretrained_cfg_overlay=overlay, num_classes=0,
                                 drop_rate=config.drop_rate, **size)
    if config.trainable == "layernorm":
        freeze_all_but_layernorm(backbone)
    return backbone


def freeze_all_but_layernorm(module: nn.Module) -> None:
    """Stop gradients to every parameter of ``module`` except its LayerNorms' scales and shifts."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    for layer in module.modules():
        if isinstance(layer, nn.LayerNorm):
            for parameter in layer.parameters():
                parameter.requires_grad_(True)


class RGBStream(nn.Module):
    """uint8 face crops ``[B, 3, S, S]`` (+ uint8 parts ``[B, 4, 3, P, P]``) → ``RGB_FEATURES [B, out_features]``."""

    def __init__(self, config: RGBStreamConfig) -> None:
        super().__init__()
        self.backbone = create_backbone(config)
        data = timm.data.resolve_data_config({}, model=self.backbone)
        self.register_buffer("mean", torch.tensor(data["mean"]).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(data["std"]).view(1, 3, 1, 1) * 255, persistent=False)
        self.project = nn.Linear(self.backbone.num_features, config.features)
        self.parts = (nn.ModuleList(small_cnn(3, (16, 32, 64), config.part_features) for _ in range(NUM_PARTS))
                      if config.parts else None)
        self.out_features = config.features + (NUM_PARTS * config.part_features if config.parts else 0)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) RGB → the backbone's normalised input."""
        return (pixels.float() - self.mean) / self.std

    def forward(self, faces: torch.Tensor, parts: torch.Tensor | None = None) -> torch.Tensor:
        """Face features, followed by the four part features when the stream has part encoders."""
        features = [self.project(self.backbone(self.normalize(faces)))]
        if self.parts is not None:
            if parts is None:
                raise ValueError("this RGB stream has part encoders: pass parts [B, 4, 3, P, P]")
            features += [encoder(self.normalize(parts[:, k])) for k, encoder in enumerate(self.parts)]
        return torch.cat(features, dim=1)


class FreqStream(nn.Module):
    """DCT high-pass map ``[B, 1, S, S]`` and/or frequency vector ``[B, 128]`` → ``FREQ_FEATURES``."""

    def __init__(self, config: FreqStreamConfig) -> None:
        super().__init__()
        self.map_encoder = small_cnn(1, config.map_channels, config.features) if config.use_map else None
        self.vector_encoder = (nn.Sequential(nn.LayerNorm(FREQ_VECTOR_SIZE),
                                             nn.Linear(FREQ_VECTOR_SIZE, config.features), nn.ReLU(inplace=True))
                               if config.use_vector else None)
        self.out_features = config.features * (int(config.use_map) + int(config.use_vector))

    def forward(self, dct_map: torch.Tensor | None, freq_vector: torch.Tensor | None) -> torch.Tensor:
        """The map and vector features, concatenated."""
        features = []
        if self.map_encoder is not None:
            if dct_map is None:
                raise ValueError("this frequency stream reads the DCT map: pass dct_map [B, 1, S, S]")
            features.append(self.map_encoder(dct_map * DCT_MAP_SCALE))
        if self.vector_encoder is not None:
            if freq_vector is None:
                raise ValueError("this frequency stream reads the frequency vector: pass freq_vector [B, 128]")
            features.append(self.vector_encoder(freq_vector))
        return torch.cat(features, dim=1)


class Fusion(nn.Module):
    """RGB and frequency features → the embedding ``F`` (200-d) and the stage-1 logit."""

    def __init__(self, in_features: int, embedding: int, drop_rate: float = 0.2) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, 2 * embedding), nn.ReLU(inplace=True), nn.Dropout(drop_rate),
                                 nn.Linear(2 * embedding, embedding))
        self.head = nn.Linear(embedding, 1)

    def forward(self, rgb_features: torch.Tensor, freq_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embedding [B, 200], logit [B])``; either input may have zero columns."""
        embedding = self.mlp(torch.cat([rgb_features, freq_features], dim=1))
        return embedding, self.head(embedding).squeeze(1)


class ClusterCenters(nn.Module):
    """CDNet's real and fake feature centres (buffers, saved with the checkpoint) and the nearer-centre decision."""

    def __init__(self, embedding: int) -> None:
        super().__init__()
        self.register_buffer("real", torch.zeros(embedding))
        self.register_buffer("fake", torch.zeros(embedding))

    @torch.no_grad()
    def reset(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Eq. (1): the centres as class means of the given embeddings (labels 1 = fake)."""
        self.real.copy_(embeddings[labels == 0].mean(dim=0))
        self.fake.copy_(embeddings[labels == 1].mean(dim=0))

    @torch.no_grad()
    def update(self, embeddings: torch.Tensor, labels: torch.Tensor, alpha: float) -> None:
        """Eq. (4): move each centre towards its class's batch mean at rate ``alpha``."""
        for label, center in ((0, self.real), (1, self.fake)):
            chosen = embeddings[labels == label]
            if len(chosen):
                center.mul_(1 - alpha).add_(alpha * chosen.mean(dim=0))

    def distances(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared distances to the real and fake centres."""
        return (embeddings - self.real).pow(2).sum(1), (embeddings - self.fake).pow(2).sum(1)

    def is_fake(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Eq. (5): fake when the fake centre is the nearer one (as a probability: ``dfguard.scoring``)."""
        to_real, to_fake = self.distances(embeddings)
        return to_fake < to_real


@dataclass
class DetectorOutput:
    """What one forward pass gives: the embedding ``F`` and the stage-1 logit."""

    embedding: torch.Tensor
    logit: torch.Tensor


class DeepfakeDetector(nn.Module):
    """The whole model: ``rgb_stream`` and/or ``freq_stream``, ``fusion`` and the cluster ``centers``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.rgb_stream = RGBStream(config.rgb) if config.rgb else None
        self.freq_stream = FreqStream(config.freq) if config.freq else None
        width = sum(s.out_features for s in (self.rgb_stream, self.freq_stream) if s is not None)
        drop_rate = config.rgb.drop_rate if config.rgb else 0.2
        self.fusion = Fusion(width, config.embedding, drop_rate)
        self.centers = ClusterCenters(config.embedding)

    def forward(self, faces: torch.Tensor, parts: torch.Tensor | None = None, dct_map: torch.Tensor | None = None,
                freq_vector: torch.Tensor | None = None) -> DetectorOutput:
        """Run the streams that exist; a missing stream contributes zero columns to the fusion."""
        empty = faces.new_zeros((faces.shape[0], 0), dtype=torch.float32)
        rgb = self.rgb_stream(faces, parts) if self.rgb_stream is not None else empty
        freq = self.freq_stream(dct_map, freq_vector) if self.freq_stream is not None else empty
        return DetectorOutput(*self.fusion(rgb, freq))


def build_model(config: ModelConfig) -> DeepfakeDetector:
    """The detector described by ``config``."""
    return DeepfakeDetector(config)

