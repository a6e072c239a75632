"""dfguard.video: even frame sampling, decoding from files and bytes, named errors for what is not a video."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dfguard.train.synthetic import VideoSpec, write_video
from dfguard.video import VideoError, read_frames, sample_indices


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[bytes, list[np.ndarray]]:
    """A 40-frame H.264 video whose frame k shows the number k as its brightness."""
    frames = [np.full((64, 96, 3), 5 * k, np.uint8) for k in range(40)]
    path = write_video(tmp_path_factory.mktemp("video") / "ramp.mp4", frames, VideoSpec(width=96, height=64,
                                                                                         frames=40, crf=0))
    return path.read_bytes(), frames


@pytest.mark.parametrize(("total", "count"), [(300, 32), (33, 32), (1000, 7), (10, 32), (1, 1)])
def test_indices_are_evenly_spread_over_the_whole_video(total, count):
    indices = sample_indices(total, count)
    assert len(indices) == min(total, count) and len(set(indices.tolist())) == len(indices)
    assert indices[0] == 0 and indices[-1] == total - 1
    gaps = np.diff(indices)
    assert len(gaps) == 0 or gaps.max() - gaps.min() <= 1


def test_frames_are_the_sampled_ones(video, tmp_path):
    data, frames = video
    path = tmp_path / "v.mp4"
    path.write_bytes(data)
    for source in (path, data):
        result = read_frames(source, 8)
        assert result.total == 40 and result.images.shape == (8, 64, 96, 3)
        np.testing.assert_array_equal(result.indices, sample_indices(40, 8))
        brightness = result.images.reshape(8, -1).mean(axis=1)
        np.testing.assert_allclose(brightness, [frames[i].mean() for i in result.indices], atol=2.0)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("make", "message"), [
    (lambda v: b"", "empty input"),
    (lambda v: np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not a readable video"),
    (lambda v: png_bytes(), "still image"),
    (lambda v: v[: len(v) // 2], "truncated|not a readable video"),
])
def test_what_is_not_a_video_is_named(video, make, message):
    with pytest.raises(VideoError, match=message):
        read_frames(make(video[0]), 8)


def test_limits_and_missing_files(video, tmp_path):
    with pytest.raises(VideoError, match="too long: 40 frames"):
        read_frames(video[0], 8, max_frames=39)
    with pytest.raises(VideoError, match="no such video file"):
        read_frames(tmp_path / "missing.mp4", 8)
    with pytest.raises(VideoError, match="no frames"):
        sample_indices(0, 8)
