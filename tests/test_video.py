"""dfguard.video: even frame sampling, decoding from files and bytes, named errors for what is not a video."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hostile import encode, very_long
from PIL import Image

from dfguard.train.synthetic import VideoSpec, write_video
from dfguard.video import DecodeLimits, VideoError, decode_frames, probe_video, read_frames, sample_indices


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
    with pytest.raises(VideoError, match=r"too long: its header declares 40 frames \(limit 39\)"):
        read_frames(video[0], 8, max_frames=39)
    with pytest.raises(VideoError, match="no such video file"):
        read_frames(tmp_path / "missing.mp4", 8)
    with pytest.raises(VideoError, match="no frames"):
        sample_indices(0, 8)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_frames_come_out_as_a_player_shows_them(rotation):
    """A camera that stores its frames sideways and says so in the display matrix: read_frames turns them
    upright (the asymmetric pattern shows which way), decode_frames gives them as stored."""
    shown = np.zeros((48, 80, 3), np.uint8)
    shown[:16, :32] = 255  # a bright block at the top left of the picture as shown
    stored = np.ascontiguousarray(np.rot90(shown, -rotation // 90))
    data = encode([stored] * 3, rotation=rotation or None, pix_fmt="yuv444p", options={"crf": "0"})
    assert probe_video(data).rotation == rotation
    np.testing.assert_allclose(read_frames(data, 2).images[0], shown, atol=8)
    np.testing.assert_allclose(decode_frames(data, np.array([0])).squeeze(0), stored, atol=8)


def test_a_header_without_a_frame_count_is_refused_once_counting_passes_the_limit():
    with pytest.raises(VideoError, match=r"too long: more than 1000 frames \(limit 1000\)"):
        probe_video(very_long(5000), max_frames=1000)
    assert probe_video(very_long(1000), max_frames=1000).frames == 1000


def test_the_sampled_frames_total_pixel_and_decode_time_limits(video):
    data = video[0]
    pixels = 96 * 64
    with pytest.raises(VideoError, match=r"pixels per video: sample fewer frames"):
        probe_video(data, sampled=8, max_total_pixels=8 * pixels - 1)
    assert probe_video(data, sampled=8, max_total_pixels=8 * pixels).frames == 40
    with pytest.raises(VideoError, match=r"the sampled frames hold 24576 pixels, more than the limit of 24575"):
        decode_frames(data, np.arange(4), limits=DecodeLimits(total_pixels=4 * pixels - 1))
    with pytest.raises(VideoError, match=r"decoding took longer than the limit of 0 s"):
        decode_frames(data, np.array([0, 39]), limits=DecodeLimits(seconds=0))


def test_frames_an_edit_list_cuts_away_are_not_counted():
    """An MP4 trimmed without re-encoding keeps the frames before its cut, which a player never shows (flagged
    discard, decoded by no one): 5 of these 20 frames. The count and the sampled frames are the 15 shown ones."""
    frames = [np.full((32, 48, 3), 12 * k, np.uint8) for k in range(20)]
    data = encode(frames, pts=[10 * (k - 5) for k in range(20)], options={"crf": "0"})
    assert probe_video(data).frames == 15
    result = read_frames(data, 32)
    assert result.total == 15 and len(result.images) == 15
    np.testing.assert_allclose(result.images.reshape(15, -1).mean(axis=1), [12 * k for k in range(5, 20)], atol=2)
