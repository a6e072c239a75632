"""Self-blended fakes (SBI, Shiohara & Yamasaki, CVPR 2022): forgeries made from real faces alone.

A real face crop is blended with a slightly altered copy of itself: the copy's colours shifted, its detail
resampled (downscaled and upscaled) or sharpened, and itself scaled and shifted by a few per cent; the blend mask
is a deformed ellipse over the face from its keypoints (eyes, nose, mouth, ears), blurred so the boundary is
soft, times a blend ratio. The fake differs from the real face only inside the mask, and its keypoints stay where
they were (the shift is a few pixels). What a detector learns from it is what every face swap leaves: a boundary
and a region whose colour and resampling differ from the rest.

The CDNet part crops (eyes, nose, mouth, cut from the frame at a higher resolution than the face crop) get the
same blend: the mask and the copy's geometry are mapped into each part's pixels through the part's place in the
face crop, so a part of the fake is the part of the same blended face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from dfguard.faces.settings import PART_KEYPOINTS, CropConfig

if TYPE_CHECKING:  # the settings here are part of the training config, which must load without PyAV
    from .data import FrameDataset

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # SBI's: most fakes fully blended inside the mask
# Where a forgery replaces a face: all of it (a face swap), its inner part from the brows to the chin between the
# cheeks (a swap that keeps the face's outline), or the mouth and jaw (lip sync, a talking head's mouth). Each
# region as (centre below the eyes, half height, half width) in eye-to-mouth distances (the first two) and in half
# the ear-to-ear distance (the last).
MASK_REGIONS = {"face": (0.6, 1.15, 1.0), "inner": (0.45, 0.95, 0.7), "lower": (1.2, 0.75, 0.75)}


@dataclass(frozen=True)
class BlendSettings:
    """Ranges the random alterations are drawn from (fractions of the crop side where a length)."""

    max_shift: float = 0.03
    max_scale: float = 0.05
    colour_shift: float = 20.0  # per-channel offset, in 0-255 levels
    contrast: float = 0.15
    resample: tuple[float, float] = (0.5, 0.9)  # downscale factor before upscaling back
    blur_sigma: tuple[float, float] = (0.01, 0.03)  # the mask's Gaussian blur
    deform: float = 0.06  # radial jitter of the ellipse
    ratios: tuple[float, ...] = BLEND_RATIOS
    regions: tuple[str, ...] = ("face",)  # drawn from evenly (MASK_REGIONS)

    def __post_init__(self) -> None:
        unknown = set(self.regions) - set(MASK_REGIONS)
        if not self.regions or unknown:
            raise ValueError(f"blend regions must be some of {sorted(MASK_REGIONS)}, got {list(self.regions)}")


@dataclass(frozen=True)
class Blend:
    """One draw of the alterations: applied alike to a face crop and to its parts."""

    gain: np.ndarray  # [3] per-channel contrast
    offset: np.ndarray  # [3] per-channel shift
    resample: float | None  # downscale factor, or None to sharpen instead
    scale: float
    shift: np.ndarray  # [2] in crop pixels
    ratio: float
    sigma: float  # mask blur, crop pixels
    radii: np.ndarray  # [16] radial jitter of the ellipse
    settings: BlendSettings = field(default_factory=BlendSettings)
    region: str = "face"


def draw_blend(rng: np.random.Generator, size: int, settings: BlendSettings = BlendSettings()) -> Blend:
    """Random alterations for a crop of ``size`` pixels."""
    s = settings
    # one region draws nothing, so the blends of a seed stay those of the settings before regions existed
    region = s.regions[int(rng.integers(len(s.regions)))] if len(s.regions) > 1 else s.regions[0]
    return Blend(gain=1 + rng.uniform(-s.contrast, s.contrast, 3),
                 offset=rng.uniform(-s.colour_shift, s.colour_shift, 3),
                 resample=float(rng.uniform(*s.resample)) if rng.random() < 0.7 else None,
                 scale=1 + float(rng.uniform(-s.max_scale, s.max_scale)),
                 shift=rng.uniform(-s.max_shift, s.max_shift, 2) * size, ratio=float(rng.choice(s.ratios)),
                 sigma=float(rng.uniform(*s.blur_sigma)) * size, radii=1 + rng.uniform(-s.deform, s.deform, 16),
                 settings=s, region=region)


def face_mask(keypoints: np.ndarray, size: int, blend: Blend) -> np.ndarray:
    """The blend mask ``[size, size]`` in [0, ratio]: a deformed ellipse over the blend's region, rotated with the
    eye line, blurred, times the blend ratio. The whole face (``face``) reaches from the brows (half the
    eye-to-mouth distance above the eyes) to the chin (three quarters of it below the mouth), across to the ears
    (half the distance between them each way); ``inner`` and ``lower`` are smaller (``MASK_REGIONS``)."""
    eyes, mouth, ears = keypoints[:2].mean(0), keypoints[3], keypoints[4:6]
    drop = max(float(np.linalg.norm(mouth - eyes)), 1.0)
    down = (mouth - eyes) / drop  # unit vector from the eyes to the mouth
    below, high, wide = MASK_REGIONS[blend.region]
    centre = eyes + down * below * drop
    across = max(0.5 * wide * float(np.linalg.norm(ears[0] - ears[1])), 1.0)
    tall = high * drop
    theta = np.linspace(0, 2 * np.pi, len(blend.radii), endpoint=False)
    sideways = np.array([-down[1], down[0]])
    offsets = (np.cos(theta)[:, None] * across * sideways + np.sin(theta)[:, None] * tall * down) * blend.radii[:, None]
    polygon = centre + offsets
    mask = np.zeros((size, size), np.float32)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    mask = cv2.GaussianBlur(mask, (0, 0), blend.sigma)
    return mask * blend.ratio


def altered(image: np.ndarray, blend: Blend, geometry: np.ndarray) -> np.ndarray:
    """The copy to blend in: colours shifted, detail resampled or sharpened, warped by ``geometry`` (a 2×3
    matrix in this image's pixels), as HWC float32 in 0..255."""
    out = image.astype(np.float32) * blend.gain + blend.offset
    height, width = out.shape[:2]
    if blend.resample is not None:
        small = cv2.resize(out, (max(2, round(width * blend.resample)), max(2, round(height * blend.resample))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        out = out + 0.5 * (out - cv2.GaussianBlur(out, (0, 0), 1.0))
    out = cv2.warpAffine(out, geometry, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0, 255)


def crop_geometry(blend: Blend, size: int) -> np.ndarray:
    """The copy's warp in face-crop pixels: scaled about the centre, then shifted."""
    c = (size - 1) / 2
    return np.array([[blend.scale, 0, (1 - blend.scale) * c + blend.shift[0]],
                     [0, blend.scale, (1 - blend.scale) * c + blend.shift[1]]], np.float64)


def part_to_crop(keypoint: np.ndarray, part_size: int, side: float) -> np.ndarray:
    """The 2×3 map from a part's pixels to face-crop pixels: the part is a square of ``side`` crop pixels
    centred on its keypoint, sampled at ``part_size``."""
    step = side / part_size
    return np.array([[step, 0, keypoint[0] - (part_size - 1) / 2 * step],
                     [0, step, keypoint[1] - (part_size - 1) / 2 * step]], np.float64)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer ∘ inner`` of two 2×3 affine maps."""
    full = lambda m: np.vstack([m, [0, 0, 1]])  # noqa: E731
    return (full(outer) @ full(inner))[:2]


def mix(image: np.ndarray, copy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask·copy + (1 − mask)·image`` as uint8 HWC (where the mask is 0 the image is unchanged)."""
    out = image.astype(np.float32) + mask[..., None] * (copy - image.astype(np.float32))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def self_blend(face: np.ndarray, parts: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator,
               crop: CropConfig = CropConfig(), settings: BlendSettings = BlendSettings()
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A self-blended fake of a real crop: ``face`` CHW uint8 ``[3, S, S]``, ``parts`` ``[4, 3, P, P]``,
    ``keypoints`` ``[6, 2]`` in face-crop pixels (as ``dfguard prepare`` stores them). Returns the fake face, its
    parts and the face's mask ``[S, S]`` (``crop``: the margin and part scale the crops were cut with)."""
    size, part_size = face.shape[-1], parts.shape[-1]
    blend = draw_blend(rng, size, settings)
    image = face.transpose(1, 2, 0)
    geometry = crop_geometry(blend, size)
    mask = face_mask(keypoints, size, blend)
    fake = mix(image, altered(image, blend, geometry), mask).transpose(2, 0, 1)
    side = crop.part_scale * size / crop.margin  # a part's side in face-crop pixels
    fake_parts = np.empty_like(parts)
    for j, k in enumerate(PART_KEYPOINTS):
        to_crop = part_to_crop(keypoints[k], part_size, side)
        to_part = cv2.invertAffineTransform(to_crop)
        part = parts[j].transpose(1, 2, 0)
        part_mask = cv2.warpAffine(mask, to_crop, (part_size, part_size),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        part_geometry = _compose(to_part, _compose(geometry, to_crop))
        fake_parts[j] = mix(part, altered(part, blend, part_geometry), part_mask).transpose(2, 0, 1)
    return np.ascontiguousarray(fake), fake_parts, mask


class SelfBlendedFrames(Dataset):
    """A ``FrameDataset`` plus one self-blended fake of each of its real faces (label 1), without its labelled
    fakes unless ``keep_fakes``. Training draws a new blend every time a fake is read (torch's RNG, seeded per
    worker by the DataLoader); ``fixed`` (validation) draws the same blend for an index every time."""

    def __init__(self, frames: FrameDataset, *, keep_fakes: bool, fixed: bool = False, seed: int = 0,
                 crop: CropConfig = CropConfig(), settings: BlendSettings = BlendSettings()) -> None:
        self.frames, self.fixed, self.seed, self.crop, self.settings = frames, fixed, seed, crop, settings
        labels = frames.labels
        kept = [i for i in range(len(frames)) if keep_fakes or labels[i] == 0]
        self.items = [(i, False) for i in kept] + [(i, True) for i in range(len(frames)) if labels[i] == 0]
        if not any(blended for _, blended in self.items):
            raise ValueError(f"{frames.root}: no real face to self-blend")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> np.ndarray:
        """The label of every sample (1 = fake, the self-blended ones included)."""
        base = self.frames.labels
        return np.array([1 if blended else base[i] for i, blended in self.items])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row, blended = self.items[index]
        face, parts, keypoints = self.frames.crops_of(row)
        label = self.frames.labels_of(row)
        if blended:
            seed = (self.seed, index) if self.fixed else (self.seed, int(torch.randint(2**31, ())))
            face, parts, _ = self_blend(face, parts, keypoints, np.random.default_rng(seed), self.crop, self.settings)
            label = 1
        return self.frames.sample(face, parts, label, index)
