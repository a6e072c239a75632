"""The deepfake_video ensemble, CPU variant, on a real tritonserver: equal to the in-process pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpc
from tritonclient.utils import InferenceServerException

from dfguard.pipeline import LocalDetector
from dfguard.serving.server import TritonServer
from dfguard.train.datasets import load_csv
from dfguard.train.synthetic import VideoSpec, write_video


def score(server: TritonServer, data: bytes, num_frames: int = 8) -> dict[str, np.ndarray]:
    client = grpc.InferenceServerClient(server.grpc_url)
    video = grpc.InferInput("VIDEO", [len(data)], "UINT8")
    video.set_data_from_numpy(np.frombuffer(data, np.uint8))
    count = grpc.InferInput("NUM_FRAMES", [1], "INT32")
    count.set_data_from_numpy(np.array([num_frames], np.int32))
    result = client.infer("deepfake_video", [video, count], client_timeout=120)
    return {name: result.as_numpy(name) for name in ("VIDEO_SCORE", "FRAME_SCORES", "FRAME_INDEX", "VERDICT")}


def test_ensemble_scores_equal_the_in_process_pipeline(served, trained, prepared):
    local = LocalDetector(trained / "best.pt")
    videos = [r for r in load_csv(prepared.parent / "videos" / "manifest.csv") if r.split == "test"][::3]
    assert {v.label for v in videos} == {0, 1}
    for record in videos:
        data = record.path.read_bytes()
        remote = score(served, data)
        expected, indices = local.score(data, 8)
        np.testing.assert_array_equal(remote["FRAME_INDEX"], indices)
        np.testing.assert_allclose(remote["FRAME_SCORES"], expected.frame_scores, atol=1e-3)
        assert abs(float(remote["VIDEO_SCORE"][0]) - expected.video_score) < 1e-3
        assert remote["VERDICT"][0].decode() == expected.verdict


def test_a_video_without_faces_is_no_face(served, tmp_path):
    flat = write_video(tmp_path / "flat.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 6, VideoSpec(160, 120, 6))
    result = score(served, flat.read_bytes(), 4)
    assert result["VERDICT"][0].decode() == "no_face"
    assert np.isnan(result["VIDEO_SCORE"][0]) and np.isnan(result["FRAME_SCORES"]).all()


def test_good_and_bad_requests_together_through_the_ensemble(served, trained, prepared):
    import io
    import re
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(png, format="PNG")
    good = [r.path.read_bytes() for r in load_csv(prepared.parent / "videos" / "manifest.csv")
            if r.split == "test"][:2]
    bad = {"empty": (b"", "empty input"), "random bytes": (bytes(range(256)) * 20, "not a readable"),
           "a PNG": (png.getvalue(), "still image"), "truncated MP4": (good[0][: len(good[0]) // 3],
                                                                     "truncated|not a readable")}
    jobs = [("good", data, None) for data in good] + [(name, data, pattern) for name, (data, pattern) in bad.items()]

    def send(job):
        name, data, pattern = job
        try:
            return name, data, pattern, score(served, data, 4), None
        except InferenceServerException as error:
            return name, data, pattern, None, error

    with ThreadPoolExecutor(len(jobs)) as pool:
        outcomes = list(pool.map(send, jobs))
    local = LocalDetector(trained / "best.pt")
    for name, data, pattern, result, error in outcomes:
        if name == "good":
            assert error is None
            expected, _ = local.score(data, 4)
            assert abs(float(result["VIDEO_SCORE"][0]) - expected.video_score) < 1e-3
        else:
            assert error is not None and error.status() == "StatusCode.INVALID_ARGUMENT", name
            assert re.search(pattern, error.message()), (name, error.message())
    assert grpc.InferenceServerClient(served.grpc_url).is_model_ready("deepfake_video")


def score_image(server: TritonServer, data: bytes) -> tuple[float, str]:
    client = grpc.InferenceServerClient(server.grpc_url)
    image = grpc.InferInput("IMAGE", [len(data)], "UINT8")
    image.set_data_from_numpy(np.frombuffer(data, np.uint8))
    result = client.infer("deepfake_image", [image], client_timeout=60)
    return float(result.as_numpy("SCORE")[0]), result.as_numpy("VERDICT")[0].decode()


def test_image_ensemble_scores_equal_the_in_process_pipeline_and_refuses_non_images(served, trained, prepared):
    import io

    from PIL import Image

    from dfguard.video import read_frames

    local = LocalDetector(trained / "best.pt")
    videos = [r for r in load_csv(prepared.parent / "videos" / "manifest.csv") if r.split == "test"][:4]
    for record in videos:
        frame = read_frames(record.path, 1).images[0]
        png = io.BytesIO()
        Image.fromarray(frame).save(png, format="PNG")
        remote_score, verdict = score_image(served, png.getvalue())
        expected = local.score_image(png.getvalue())
        assert abs(remote_score - expected.video_score) < 1e-3 and verdict == expected.verdict
    flat = io.BytesIO()
    Image.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(flat, format="JPEG")
    remote_score, verdict = score_image(served, flat.getvalue())
    assert verdict == "no_face" and np.isnan(remote_score)
    for data, pattern in ((b"", "empty input"), (videos[0].path.read_bytes(), "not an image"),
                          (png.getvalue()[:200], "truncated or corrupt image")):
        with pytest.raises(InferenceServerException, match=pattern) as error:
            score_image(served, data)
        assert error.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert grpc.InferenceServerClient(served.grpc_url).is_model_ready("deepfake_image")


def test_perf_analyzer_sweep_runs_without_errors(served, prepared, tmp_path):
    from dfguard.serving.perf import run_sweep

    videos = [r.path.read_bytes() for r in load_csv(prepared.parent / "videos" / "manifest.csv")[:3]]
    rows, output = run_sweep(served.grpc_url, videos, tmp_path, num_frames=4, concurrency=(1, 2),
                             requests_per_window=4)
    assert [r.concurrency for r in rows] == [1, 2]
    assert all(r.throughput > 0 and r.p50_ms > 0 for r in rows)
    assert "error" not in output.lower().replace("errors: 0", "")
