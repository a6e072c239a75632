"""The deepfake_video ensemble, CPU variant, on a real tritonserver: equal to the in-process pipeline, every face
found, tracked and scored (two people with one forged, a crowd, grayscale and 4K), no_face with no face at all."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tritonclient.grpc as grpc
from helpers import SEED, assert_equal_to_local, infer_video
from tritonclient.utils import InferenceServerException

from dfguard.faces.decode import pairwise_iou
from dfguard.faces.settings import TrackConfig
from dfguard.pipeline import LocalDetector
from dfguard.serving.server import TritonServer
from dfguard.train.datasets import load_csv
from dfguard.train.scenes import head_and_shoulders, make_scene, match
from dfguard.train.synthetic import VideoSpec, source_photos, write_video


def test_ensemble_scores_equal_the_in_process_pipeline(served, trained, prepared):
    local = LocalDetector(trained / "best.pt")
    videos = [r for r in load_csv(prepared.parent / "videos" / "manifest.csv") if r.split == "test"][::3]
    assert {v.label for v in videos} == {0, 1}
    for record in videos:
        data = record.path.read_bytes()
        assert_equal_to_local(infer_video(served, data), local.score(data, 8))


def test_a_video_without_faces_is_no_face_with_no_face_rows(served, tmp_path):
    flat = write_video(tmp_path / "flat.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 6, VideoSpec(160, 120, 6))
    result = infer_video(served, flat.read_bytes(), 4)
    assert result["VERDICT"][0].decode() == "no_face"
    assert np.isnan(result["VIDEO_SCORE"][0]) and np.isnan(result["FRAME_SCORES"]).all()
    assert result["FACE_SCORES"].shape == (0,) and result["FACE_BOX"].shape == (0, 4)
    assert result["FACE_TRACK"].shape == result["FACE_FRAME"].shape == result["TRACK_SCORES"].shape == (0,)


def track_of(result: dict[str, np.ndarray], box: np.ndarray) -> int:
    """The track whose first face overlaps ``box`` (the person's box in the first frame) the most."""
    first = result["FACE_FRAME"] == 0
    overlap = pairwise_iou(box[None], result["FACE_BOX"][first])[0]
    assert overlap.max() > 0.5, (box, result["FACE_BOX"][first])
    return int(result["FACE_TRACK"][first][overlap.argmax()])


def test_a_forged_person_beside_a_real_one_is_found_and_flagged(served, trained, two_people):
    local = LocalDetector(trained / "best.pt")
    forged = two_people["forged"]
    result = infer_video(served, forged.path.read_bytes(), 8)
    assert_equal_to_local(result, local.score(forged.path, 8))
    assert len(result["TRACK_SCORES"]) == 2 and (np.bincount(result["FACE_FRAME"]) == 2).all()  # 2 faces, 8 frames
    fake_track = track_of(result, forged.boxes[forged.forged])
    real_track = track_of(result, forged.boxes[1 - forged.forged])
    assert fake_track != real_track
    assert result["TRACK_SCORES"][fake_track] > result["TRACK_SCORES"][real_track] + 0.3
    assert result["VERDICT"][0].decode() == "fake"
    assert float(result["VIDEO_SCORE"][0]) == pytest.approx(float(result["TRACK_SCORES"][fake_track]))
    unforged = infer_video(served, two_people["real"].path.read_bytes(), 8)
    assert len(unforged["TRACK_SCORES"]) == 2 and unforged["VERDICT"][0].decode() != "fake"


def crowd_frame(faces: int, width: int = 1920, height: int = 1080) -> np.ndarray:
    """A frame of ``faces`` heads (real photos) in a grid, each face about 110 px tall."""
    columns = int(np.ceil(np.sqrt(faces * width / height)))
    rows = int(np.ceil(faces / columns))
    frame = np.full((height, width, 3), 70, np.uint8)
    photos = source_photos()
    for k in range(faces):
        region, face = head_and_shoulders(photos[k % len(photos)].image, photos[k % len(photos)].face_box)
        scale = 110 / (face[3] - face[1])
        cut = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cell_w, cell_h = width // columns, height // rows
        cut = cut[:cell_h - 4, :cell_w - 4]
        top, left = (k // columns) * cell_h + 2, (k % columns) * cell_w + 2
        frame[top:top + cut.shape[0], left:left + cut.shape[1]] = cut
    return frame


def test_a_crowd_is_capped_per_frame_and_answered(served, tmp_path):
    frame = crowd_frame(30)
    crowd = write_video(tmp_path / "crowd.mp4", [frame] * 3, VideoSpec(frame.shape[1], frame.shape[0], 3))
    result = infer_video(served, crowd.read_bytes(), 3)
    per_frame = np.bincount(result["FACE_FRAME"], minlength=3)
    assert (per_frame == TrackConfig().max_faces).all(), per_frame  # 30 there, 8 kept: capped, not an error
    assert result["VERDICT"][0].decode() in ("fake", "real", "uncertain")
    assert grpc.InferenceServerClient(served.grpc_url).is_model_ready("deepfake_video")


@pytest.mark.parametrize(("width", "height", "gray"), [(640, 360, True), (3840, 2160, False)], ids=["gray", "4k"])
def test_a_grayscale_clip_and_a_4k_clip_have_their_face_found_and_scored(served, tmp_path, width, height, gray):
    scene = make_scene(np.random.default_rng(SEED), width=width, height=height, faces=1, min_face_px=80, gray=gray)
    clip = write_video(tmp_path / "clip.mp4", [scene.image] * 3, VideoSpec(width, height, 3))
    result = infer_video(served, clip.read_bytes(), 2)
    for k in range(2):
        assert match(scene.boxes, result["FACE_BOX"][result["FACE_FRAME"] == k]) == (1, 0)  # the face, nothing else
    assert result["VERDICT"][0].decode() != "no_face" and np.isfinite(result["FACE_SCORES"]).all()


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
            return name, data, pattern, infer_video(served, data, 4), None
        except InferenceServerException as error:
            return name, data, pattern, None, error

    with ThreadPoolExecutor(len(jobs)) as pool:
        outcomes = list(pool.map(send, jobs))
    local = LocalDetector(trained / "best.pt")
    for name, data, pattern, result, error in outcomes:
        if name == "good":
            assert error is None
            assert_equal_to_local(result, local.score(data, 4))
        else:
            assert error is not None and error.status() == "StatusCode.INVALID_ARGUMENT", name
            assert re.search(pattern, error.message()), (name, error.message())
    assert grpc.InferenceServerClient(served.grpc_url).is_model_ready("deepfake_video")


def score_image(server: TritonServer, data: bytes) -> tuple[float, str, np.ndarray]:
    client = grpc.InferenceServerClient(server.grpc_url)
    image = grpc.InferInput("IMAGE", [len(data)], "UINT8")
    image.set_data_from_numpy(np.frombuffer(data, np.uint8))
    result = client.infer("deepfake_image", [image], client_timeout=60)
    return float(result.as_numpy("SCORE")[0]), result.as_numpy("VERDICT")[0].decode(), result.as_numpy("FACE_SCORES")


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
        remote_score, verdict, faces = score_image(served, png.getvalue())
        expected = local.score_image(png.getvalue()).scores
        assert abs(remote_score - expected.video_score) < 1e-3 and verdict == expected.verdict
        np.testing.assert_allclose(faces, expected.face_scores, atol=1e-3)
        assert remote_score == pytest.approx(faces.max())  # every face scored, the image takes the highest
    flat = io.BytesIO()
    Image.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(flat, format="JPEG")
    remote_score, verdict, faces = score_image(served, flat.getvalue())
    assert verdict == "no_face" and np.isnan(remote_score) and faces.shape == (0,)
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


def test_the_one_image_call_finds_the_faces_the_service_finds_in_a_wide_scene(served):
    """``dfguard.faces.search.detect_faces(image)``, the public one-image call, runs the service's search: on a
    1080p frame of three people with faces from 40 px, it returns the boxes the served image ensemble answers,
    and finds faces the single whole-frame window misses."""
    import io

    from PIL import Image

    from dfguard.client import DeepfakeClient
    from dfguard.faces.detect import detect_whole_image
    from dfguard.faces.search import detect_faces

    scene = make_scene(np.random.default_rng(SEED + 3), width=1920, height=1080, faces=3, min_face_px=40,
                       max_face_px=120, gray=False)
    png = io.BytesIO()
    Image.fromarray(scene.image).save(png, format="PNG")
    with DeepfakeClient(served.grpc_url) as client:
        answer = client.score_image(png.getvalue())
    ours = np.array([face.box for face in detect_faces(scene.image)], np.float32)
    theirs = np.array([face.box for face in answer.faces], np.float32)
    assert len(ours) == len(theirs) and (pairwise_iou(ours, theirs).max(axis=1) > 0.95).all()
    found, false = match(scene.boxes, ours)
    assert found >= 2 and false == 0  # 3 of 3 at the default seed; the scenes benchmark measures the recall
    whole = np.array([f.box for f in detect_whole_image(scene.image)], np.float32).reshape(-1, 4)
    assert match(scene.boxes, whole)[0] < found
