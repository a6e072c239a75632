"""dfguard.train.synthetic: real-photo videos and self-blended forgeries, as files a user can open."""

from __future__ import annotations

import av
import numpy as np
import pytest

from dfguard.faces.detect import detect_whole_image
from dfguard.train.datasets import load_csv
from dfguard.train.synthetic import FAMILIES, VideoSpec, forge, make_dataset, render_real, source_photos

SPEC = VideoSpec(width=160, height=128, frames=6)


def decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_dataset_is_a_csv_of_decodable_h264_videos(tmp_path):
    manifest = make_dataset(tmp_path, families=("nearest", "pixel_shuffle"), videos_per_class=3, spec=SPEC,
                            progress=False)
    records = load_csv(manifest)
    assert len(records) == 3 * 3
    assert sorted({r.method for r in records}) == ["nearest", "pixel_shuffle", "real"]
    assert {r.label for r in records if r.method == "real"} == {0} and {r.label for r in records
                                                                     if r.method != "real"} == {1}
    assert {r.split for r in records} == {"train", "val", "test"}
    frames = decode(records[0].path)
    assert len(frames) == SPEC.frames and frames[0].shape == (SPEC.height, SPEC.width, 3)


def test_unknown_family_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown resampling families \['gan'\]"):
        make_dataset(tmp_path, families=("gan",), videos_per_class=1, spec=SPEC, progress=False)


def test_real_frames_show_the_face_where_the_boxes_say(rng):
    photo = source_photos()[1]
    frames, boxes = render_real(photo, VideoSpec(width=256, height=256, frames=3), rng)
    for frame, box in zip(frames, boxes, strict=True):
        (face, *_) = detect_whole_image(frame)
        inter = np.clip(np.minimum(face.box[2:], box[2:]) - np.maximum(face.box[:2], box[:2]), 0, None).prod()
        union = np.prod(np.subtract(face.box[2:], face.box[:2])) + np.prod(box[2:] - box[:2]) - inter
        assert inter / union > 0.6


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_forges_only_the_face(rng, name):
    photo = source_photos()[0]
    frames, boxes = render_real(photo, VideoSpec(width=256, height=256, frames=2), rng)
    forged = forge(frames, boxes, name, rng)
    for real, fake, box in zip(frames, forged, boxes, strict=True):
        x0, y0, x1, y1 = box
        margin = 0.1 * (x1 - x0) + 2
        outside = np.ones(real.shape[:2], bool)
        outside[max(0, int(y0 - margin)):int(y1 + margin) + 1, max(0, int(x0 - margin)):int(x1 + margin) + 1] = False
        assert np.array_equal(real[outside], fake[outside])
        inside = real[int(y0):int(y1), int(x0):int(x1)].astype(float), fake[int(y0):int(y1), int(x0):int(x1)]
        difference = np.abs(inside[0] - inside[1]).mean()
        assert 1.0 < difference < 40.0  # changed, but still the same face


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_family_only_fake_differs_by_its_resampling_alone(rng, name):
    """The whole frame resampled: no blend boundary (background and face changed alike), no colour shift (each
    channel's mean stays within a level), and the same fakes again from the same seed."""
    photo = source_photos()[0]
    frames, boxes = render_real(photo, VideoSpec(width=256, height=256, frames=2), rng)
    forged = forge(frames, boxes, name, np.random.default_rng(4), forgery="family-only")
    for real, fake, box in zip(frames, forged, boxes, strict=True):
        assert np.abs(real.reshape(-1, 3).mean(0) - fake.reshape(-1, 3).mean(0)).max() < 1.0
        change = np.abs(real.astype(float) - fake).mean(2)
        x0, y0, x1, y1 = box.astype(int)
        face, rest = change[y0:y1, x0:x1].mean(), np.concatenate([change[:, :x0].ravel(), change[:, x1:].ravel()])
        assert 1.0 < face and rest.mean() > 0.3 * face  # changed everywhere, not only at the face
    again = forge(frames, boxes, name, np.random.default_rng(4), forgery="family-only")
    assert all(np.array_equal(a, b) for a, b in zip(forged, again, strict=True))
    with pytest.raises(ValueError, match="forgery must be"):
        forge(frames, boxes, name, rng, forgery="swap")


@pytest.mark.parametrize(("count", "expected"), [(3, [1, 1, 1]), (8, [4, 2, 2]), (10, [6, 2, 2]), (2, [2, 0, 0])])
def test_splits_get_at_least_one_video_when_there_are_enough(count, expected):
    from dfguard.train.synthetic import split_names

    names = split_names(count, {"train": 0.6, "val": 0.2, "test": 0.2})
    assert [names.count(s) for s in ("train", "val", "test")] == expected


def test_a_people_video_has_its_keyframes_and_one_forged_person(tmp_path):
    import av

    from dfguard.train.scenes import make_people_video
    from dfguard.train.synthetic import VideoSpec

    spec = VideoSpec(width=640, height=360, frames=50, fps=25, keyframe_interval=25)
    fake = make_people_video(tmp_path / "fake.mp4", spec, np.random.default_rng(4), people=2, family="nearest")
    real = make_people_video(tmp_path / "real.mp4", spec, np.random.default_rng(4), people=2)
    assert fake.forged in (0, 1) and real.forged is None and np.allclose(fake.boxes, real.boxes)
    with av.open(str(fake.path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (640, 360)
        keyframes = [packet.is_keyframe for packet in container.demux(stream) if packet.size]
    assert len(keyframes) == 50 and sum(keyframes) >= 2 and keyframes[0]
    first = {}
    for name, video in (("fake", fake), ("real", real)):
        with av.open(str(video.path)) as container:
            first[name] = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)
    difference = np.abs(first["fake"] - first["real"]).mean(axis=2)
    box = fake.boxes[fake.forged].round().astype(int)
    other = fake.boxes[1 - fake.forged].round().astype(int)
    forged_change = difference[box[1]:box[3], box[0]:box[2]].mean()
    assert forged_change > 2.0 and difference[other[1]:other[3], other[0]:other[2]].mean() < 0.25 * forged_change
