"""The GPU variant's DALI pipeline (``model_repository/video_decode/1/dali.py``), run on the CPU with a VP9 video:
the frames it decodes are the ones ``video_probe`` chose."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dfguard.train.synthetic import VideoSpec, render_real, source_photos, write_video
from dfguard.video import decode_frames, probe_video, sample_indices

pytest.importorskip("nvidia.dali", reason="nvidia-dali is installed with the dev extra")

DEFINITION = Path(__file__).resolve().parents[1] / "model_repository" / "video_decode" / "1" / "dali.py"
SPEC = VideoSpec(width=176, height=144, frames=30, codec="vp9")


@pytest.fixture(scope="module")
def definition():
    """The repository's dali.py, imported as Triton's DALI backend imports it."""
    spec = importlib.util.spec_from_file_location("video_decode_dali", DEFINITION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[bytes]:
    """Two VP9 videos of different sizes and lengths (DALI's CPU decoder has no H.264)."""
    folder = tmp_path_factory.mktemp("vp9")
    photos = source_photos()
    specs = [SPEC, VideoSpec(width=128, height=160, frames=17, codec="vp9")]
    return [write_video(folder / f"{k}.webm", render_real(photos[k], spec, np.random.default_rng(k))[0],
                        spec).read_bytes() for k, spec in enumerate(specs)]


def run_cpu(definition, videos: list[bytes], indices: list[np.ndarray]) -> list[np.ndarray]:
    """The repository's pipeline with the CPU decoder and no GPU, one batch of videos."""
    pipeline = definition.video_decode(decoder_device="cpu", device_id=None, batch_size=len(videos), num_threads=1)
    pipeline.build()
    pipeline.feed_input("VIDEO", [np.frombuffer(v, np.uint8) for v in videos])
    pipeline.feed_input("FRAME_INDEX", [i.astype(np.int32) for i in indices])
    (frames,) = pipeline.run()
    return [np.array(f) for f in frames]


def test_exactly_one_autoserialize_pipeline_in_the_definition(definition):
    from nvidia.dali._utils.autoserialize import _discover_autoserialize

    assert _discover_autoserialize(definition, visited=[]) == [definition.video_decode]


def test_the_pipeline_decodes_the_frames_video_probe_chose(definition, videos):
    indices = [sample_indices(probe_video(v).frames, count) for v, count in zip(videos, (8, 5), strict=True)]
    frames = run_cpu(definition, videos, indices)
    for video, wanted, decoded in zip(videos, indices, frames, strict=True):
        every_frame = decode_frames(video, np.arange(probe_video(video).frames))
        assert decoded.shape == (len(wanted), *every_frame.shape[1:])
        for position, index in enumerate(wanted):
            # DALI converts YUV to RGB about one level brighter than FFmpeg's swscale (measured: mean absolute
            # difference ≈ 2); the chosen frame is still by far the nearest, the next one 2.4× or more away
            distances = np.abs(every_frame.astype(np.int16) - decoded[position]).mean(axis=(1, 2, 3))
            assert distances.argmin() == index, f"frame {position} is video frame {distances.argmin()}, not {index}"
            assert distances[index] < 3.0 and distances[index] < 0.6 * np.partition(distances, 1)[1]
