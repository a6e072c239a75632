"""Self-blended fakes (train/self_blend.py) on crops of real photos: changed only inside a soft mask over the
face, keypoints in place, parts blended as the face is; the dataset that mixes them in."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest
from hostile import people

from dfguard.faces.crops import FaceCrops, crop_faces
from dfguard.faces.detect import in_process_detector
from dfguard.faces.search import find_faces
from dfguard.faces.settings import PART_KEYPOINTS, CropConfig, DetectorConfig, TrackConfig
from dfguard.faces.weights import detector_kind
from dfguard.train.self_blend import (
    BlendSettings,
    SelfBlendedFrames,
    crop_geometry,
    draw_blend,
    part_to_crop,
    self_blend,
)

CROP = CropConfig(size=256)


@cache
def real_crops(seed: int) -> FaceCrops:
    """The crops ``dfguard prepare`` cuts of a real face (a photo from an installed package)."""
    frame = people(640, 480, face_px=200, seed=seed).image
    detector = DetectorConfig()
    found = find_faces([frame], detector, TrackConfig(), in_process_detector(detector_kind(detector.name)))
    return crop_faces([frame], found, CROP, rows=1)


@pytest.mark.parametrize("seed", range(4))
def test_a_self_blend_changes_the_face_only_inside_its_soft_mask(seed):
    crops = real_crops(seed % 2)
    face, parts, keypoints = crops.faces[0], crops.parts[0], crops.keypoints[0]
    fake, _, mask = self_blend(face, parts, keypoints, np.random.default_rng(seed), CROP)
    change = np.abs(fake.astype(int) - face.astype(int)).max(0)
    assert np.all(change[mask == 0] == 0)  # outside the mask: the real face, pixel for pixel
    assert np.all(change <= np.ceil(mask * 255) + 1)
    assert change[mask > 0.2].mean() > 3  # and inside it, visibly altered
    ratio = mask.max()
    for k in PART_KEYPOINTS:  # eyes, nose and mouth are fully inside the blend
        x, y = np.round(keypoints[k]).astype(int)
        assert mask[y, x] >= 0.9 * ratio
    corners = [mask[0, 0], mask[0, -1], mask[-1, 0], mask[-1, -1]]
    assert max(corners) == 0  # the background at the crop's corners is not
    soft = ((mask > 0.05 * ratio) & (mask < 0.95 * ratio)).sum()
    assert soft > 2 * 256  # a band of partial blending around the face, not a hard edge
    assert np.abs(np.gradient(mask / ratio)).max() < 0.25


def test_keypoints_stay_in_place():
    settings = BlendSettings()
    for seed in range(20):
        blend = draw_blend(np.random.default_rng(seed), 256, settings)
        keypoints = real_crops(0).keypoints[0].astype(np.float64)
        moved = keypoints @ crop_geometry(blend, 256)[:, :2].T + crop_geometry(blend, 256)[:, 2]
        assert np.abs(moved - keypoints).max() <= (settings.max_shift + settings.max_scale / 2) * 256 + 1e-6


def test_parts_are_blended_as_the_face_is():
    """A part of the fake equals the fake face sampled where that part lies (at the face crop's coarser
    resolution, so both are compared blurred), as well as the real part matches the real face."""
    crops = real_crops(1)
    face, parts, keypoints = crops.faces[0], crops.parts[0], crops.keypoints[0]
    fake, fake_parts, _ = self_blend(face, parts, keypoints, np.random.default_rng(3), CROP,
                                     BlendSettings(ratios=(1.0,), colour_shift=40.0))
    side = CROP.part_scale * CROP.size / CROP.margin
    small = lambda image: cv2.resize(image.transpose(1, 2, 0).astype(np.float32), (12, 12),  # noqa: E731
                                     interpolation=cv2.INTER_AREA)
    for j, k in enumerate(PART_KEYPOINTS):
        to_crop = part_to_crop(keypoints[k], parts.shape[-1], side)
        at = lambda image, m=to_crop: cv2.warpAffine(  # noqa: E731
            image.transpose(1, 2, 0), m, (parts.shape[-1],) * 2, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        ).transpose(2, 0, 1)
        real_error = np.abs(small(parts[j]) - small(at(face))).mean()
        fake_error = np.abs(small(fake_parts[j]) - small(at(fake))).mean()
        change = np.abs(small(fake_parts[j]) - small(parts[j])).mean()
        assert fake_error <= real_error + 4 and change > 2 * fake_error, (j, real_error, fake_error, change)


def test_the_same_seed_draws_the_same_fake():
    crops = real_crops(0)
    one = self_blend(crops.faces[0], crops.parts[0], crops.keypoints[0], np.random.default_rng(7), CROP)
    two = self_blend(crops.faces[0], crops.parts[0], crops.keypoints[0], np.random.default_rng(7), CROP)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_dataset_of_real_faces_gets_one_self_blended_fake_per_face(prepared):
    from dfguard.train.data import FrameDataset

    frames = FrameDataset(prepared, "val")
    reals = int((frames.labels == 0).sum())
    only = SelfBlendedFrames(frames, keep_fakes=False, fixed=True)
    assert len(only) == 2 * reals and only.labels.sum() == reals  # the data set's own fakes are left out
    both = SelfBlendedFrames(frames, keep_fakes=True, fixed=True)
    assert len(both) == len(frames) + reals
    first_fake = reals  # the blended copies follow the kept faces
    again = only[first_fake]["faces"], only[first_fake]["faces"]
    assert int(only[first_fake]["label"]) == 1 and bool((again[0] == again[1]).all())  # fixed: the same blend
    original = only[0]["faces"]
    assert int(only[0]["label"]) == 0 and not bool((original == again[0]).all())


def test_mask_regions_cover_the_face_its_inner_part_or_the_mouth_and_jaw():
    """``lower`` (lip sync) covers mouth but not eyes; ``inner`` covers eyes, nose and mouth inside a smaller area
    than ``face``; a draw over several regions picks each of them."""
    from dfguard.train.self_blend import face_mask

    keypoints = real_crops(0).keypoints[0]
    masks = {}
    for region in ("face", "inner", "lower"):
        blend = draw_blend(np.random.default_rng(0), 256, BlendSettings(regions=(region,), ratios=(1.0,)))
        assert blend.region == region
        masks[region] = face_mask(keypoints, 256, blend)
    at = lambda mask, k: mask[tuple(np.round(keypoints[k][::-1]).astype(int))]  # noqa: E731
    assert at(masks["lower"], 3) > 0.9 and max(at(masks["lower"], 0), at(masks["lower"], 1)) < 0.1
    assert min(at(masks["inner"], k) for k in PART_KEYPOINTS) > 0.9
    assert masks["lower"].sum() < masks["inner"].sum() < masks["face"].sum()
    drawn = {draw_blend(np.random.default_rng(seed), 256, BlendSettings(regions=("face", "inner", "lower"))).region
             for seed in range(30)}
    assert drawn == {"face", "inner", "lower"}
    with pytest.raises(ValueError, match="blend regions"):
        BlendSettings(regions=("ears",))
