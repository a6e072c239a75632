"""train/augment.py: upload degradations of training crops, drawn at random, alike for a face and its parts."""

from __future__ import annotations

import numpy as np
import pytest
from photos import grace_hopper
from PIL import Image

from dfguard.train.augment import UploadAugment, degrade_jpeg, degrade_resample


def crop(side: int = 128) -> np.ndarray:
    """A CHW uint8 crop of a real photo."""
    return np.asarray(Image.fromarray(grace_hopper()).resize((side, side))).transpose(2, 0, 1).copy()


def test_jpeg_and_resampling_degrade_as_the_libraries_do():
    image = crop()
    quality = degrade_jpeg(40)(image)
    assert quality.shape == image.shape and quality.dtype == np.uint8
    assert 1 < np.abs(quality.astype(int) - image).mean() < 12
    assert np.abs(degrade_jpeg(95)(image).astype(int) - image).mean() < np.abs(quality.astype(int) - image).mean()
    half = degrade_resample(0.5)(image)
    assert half.shape == image.shape and np.abs(half.astype(int) - image).mean() > 1


def test_draws_follow_their_probabilities_and_seeds():
    image = crop()
    assert not UploadAugment().active and UploadAugment().draw(np.random.default_rng(0)) is None
    always = UploadAugment(jpeg=1.0, resample=1.0, blur=1.0)
    one = always.draw(np.random.default_rng(3))(image)
    assert np.array_equal(one, always.draw(np.random.default_rng(3))(image))
    changed = sum(UploadAugment(jpeg=0.5).draw(np.random.default_rng(seed)) is not None for seed in range(200))
    assert 70 < changed < 130
    with pytest.raises(ValueError, match="probabilities"):
        UploadAugment(jpeg=1.5)


def test_only_training_crops_are_augmented(prepared):
    from dfguard.train.config import load_preset
    from dfguard.train.trainer import training_frames

    config = load_preset("tiny", ("data.augment.jpeg=1.0", "data.augment.jpeg_quality=[20, 20]"))
    train, val = training_frames(prepared, "train", config), training_frames(prepared, "val", config)
    assert train.augment is not None and val.augment is None
    face = train.crops_of(0)[0]
    sample = train[0]["faces"].numpy()
    assert np.array_equal(sample, degrade_jpeg(20)(face)) and not np.array_equal(sample, face)
