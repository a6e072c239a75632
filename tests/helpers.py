"""Helpers several test modules share: the session's seed, the installed command, references and the ensemble's raw
answer. Test modules import this (and the data makers beside it: ``photos``, ``hostile``, ``kernel_cases``,
``training_data``), never each other."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dfguard.faces.weights import DetectorKind
    from dfguard.pipeline import LocalResult
    from dfguard.serving.server import TritonServer

REPO = Path(__file__).resolve().parents[1]
DFGUARD = str(Path(sys.executable).with_name("dfguard"))  # the installed console script
# One seed for every random choice the tests make (inputs and the training run): fixed, so a run is repeatable;
# DFGUARD_TEST_SEED picks another one (CI or a person hunting for a margin that is only noise).
SEED = int(os.environ.get("DFGUARD_TEST_SEED", "0"))
# the deepfake_video ensemble's outputs
OUTPUTS = ("VIDEO_SCORE", "FRAME_SCORES", "FRAME_INDEX", "VERDICT", "FACE_SCORES", "FACE_FRAME", "FACE_BOX",
           "FACE_TRACK", "TRACK_SCORES")


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL results file, as plain JSON."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def mediapipe_faces(image: np.ndarray, kind: DetectorKind | None = None
                    ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """mediapipe's own detector, the reference (short range by default: model_selection 0, full range: 1): (box
    x0,y0,x1,y1, keypoints [6,2], score) in pixels, best first."""
    import mediapipe as mp

    from dfguard.faces.weights import SHORT_RANGE

    selection = 0 if kind in (None, SHORT_RANGE) else 1
    with mp.solutions.face_detection.FaceDetection(model_selection=selection, min_detection_confidence=0.5) as detector:
        found = detector.process(np.ascontiguousarray(image)).detections or []
    height, width = image.shape[:2]
    out = []
    for det in found:
        box = det.location_data.relative_bounding_box
        corners = np.array([box.xmin, box.ymin, box.xmin + box.width, box.ymin + box.height]) * [width, height, width,
                                                                                                 height]
        points = np.array([(k.x * width, k.y * height) for k in det.location_data.relative_keypoints])
        out.append((corners, points, det.score[0]))
    return sorted(out, key=lambda d: -d[2])


def infer_video(server: TritonServer, data: bytes, num_frames: int = 8) -> dict[str, np.ndarray]:
    """The ensemble's raw outputs (``OUTPUTS``) for a video's bytes, through plain ``tritonclient``."""
    import tritonclient.grpc as grpc

    client = grpc.InferenceServerClient(server.grpc_url)
    video = grpc.InferInput("VIDEO", [len(data)], "UINT8")
    video.set_data_from_numpy(np.frombuffer(data, np.uint8))
    count = grpc.InferInput("NUM_FRAMES", [1], "INT32")
    count.set_data_from_numpy(np.array([num_frames], np.int32))
    result = client.infer("deepfake_video", [video, count], client_timeout=300)
    return {name: result.as_numpy(name) for name in OUTPUTS}


def assert_equal_to_local(remote: dict[str, np.ndarray], expected: LocalResult) -> None:
    """The ensemble's answer is the in-process pipeline's: same faces, boxes, tracks, scores (within 1e-3)."""
    np.testing.assert_array_equal(remote["FRAME_INDEX"], expected.frame_index)
    np.testing.assert_array_equal(remote["FACE_FRAME"], expected.faces.frame)
    np.testing.assert_array_equal(remote["FACE_TRACK"], expected.faces.track)
    np.testing.assert_allclose(remote["FACE_BOX"], expected.faces.boxes, atol=0.05)
    np.testing.assert_allclose(remote["FACE_SCORES"], expected.scores.face_scores, atol=1e-3)
    np.testing.assert_allclose(remote["TRACK_SCORES"], expected.scores.track_scores, atol=1e-3)
    np.testing.assert_allclose(remote["FRAME_SCORES"], expected.scores.frame_scores, atol=1e-3)
    assert abs(float(remote["VIDEO_SCORE"][0]) - expected.scores.video_score) < 1e-3
    assert remote["VERDICT"][0].decode() == expected.scores.verdict


def tensor(name: str, array: np.ndarray, datatype: str) -> object:
    """One gRPC input (``tritonclient.grpc.InferInput``) holding ``array``."""
    import tritonclient.grpc as grpc

    wrapped = grpc.InferInput(name, list(array.shape), datatype)
    wrapped.set_data_from_numpy(array)
    return wrapped
