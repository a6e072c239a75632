"""dfguard.client against the real CPU ensemble: equal to in-process scores, retries only what is transient."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from dataclasses import dataclass, field

import numpy as np
import pytest

from dfguard.client import AsyncDeepfakeClient, DeepfakeClient, RetryPolicy, ScoringError
from dfguard.pipeline import LocalDetector
from dfguard.serving.server import TritonServer, free_ports
from dfguard.train.datasets import load_csv


@pytest.fixture(scope="module")
def test_videos(prepared) -> list:
    records = [r for r in load_csv(prepared.parent / "videos" / "manifest.csv") if r.split == "test"]
    chosen = records[::4]
    assert {r.label for r in chosen} == {0, 1}
    return chosen


def test_sync_and_async_clients_equal_the_in_process_pipeline(served, trained, test_videos):
    local = LocalDetector(trained / "best.pt")
    with DeepfakeClient(served.grpc_url) as client:
        assert client.is_ready() and client.is_ready("deepfake_image")
        metadata = client.model_metadata()
        assert [i["name"] for i in metadata["inputs"]] == ["VIDEO", "NUM_FRAMES"]
        remote = [client.score_video(record.path, 6) for record in test_videos]

    async def score_all() -> list:
        async with AsyncDeepfakeClient(served.grpc_url) as client:
            assert await client.is_ready()
            return await asyncio.gather(*(client.score_video(r.path.read_bytes(), 6) for r in test_videos))

    concurrent = asyncio.run(score_all())
    for record, sync, parallel in zip(test_videos, remote, concurrent, strict=True):
        local_result = local.score(record.path, 6)
        expected, faces = local_result.scores, local_result.faces
        for result in (sync, parallel):
            assert (result.model, result.model_version, result.attempts) == ("deepfake_video", "1", 1)
            assert abs(result.score - expected.video_score) < 1e-3 and result.verdict == expected.verdict
            np.testing.assert_array_equal(result.frame_index, local_result.frame_index)
            np.testing.assert_allclose(result.frame_scores, expected.frame_scores, atol=1e-3)
            assert [f.frame for f in result.faces] == local_result.frame_index[faces.frame].tolist()
            assert [f.track for f in result.faces] == faces.track.tolist()
            np.testing.assert_allclose([f.box for f in result.faces], faces.boxes.reshape(-1, 4), atol=0.05)
            np.testing.assert_allclose([f.score for f in result.faces], expected.face_scores, atol=1e-3)
            np.testing.assert_allclose([t.score for t in result.tracks], expected.track_scores, atol=1e-3)
            assert [t.faces for t in result.tracks] == np.bincount(faces.track).tolist()
            assert all(t.first_frame <= t.last_frame for t in result.tracks)
            if result.tracks:
                assert result.top_track.score == pytest.approx(max(t.score for t in result.tracks))


def test_invalid_argument_is_not_retried(served):
    with DeepfakeClient(served.grpc_url, retry=RetryPolicy(max_attempts=5, base_delay=0.01)) as client:
        with pytest.raises(ScoringError, match="not a readable video") as error:
            client.score_video(bytes(range(256)) * 8)
    assert error.value.status == "StatusCode.INVALID_ARGUMENT" and error.value.attempts == 1


def test_deadline_exceeded_is_retried_then_reported(served, test_videos):
    policy = RetryPolicy(max_attempts=3, base_delay=0.01)
    with DeepfakeClient(served.grpc_url, timeout=0.001, retry=policy) as client:
        with pytest.raises(ScoringError) as error:
            client.score_video(test_videos[0].path)
    assert error.value.status == "StatusCode.DEADLINE_EXCEEDED" and error.value.attempts == 3


@dataclass(frozen=True)
class SignallingPolicy(RetryPolicy):
    """A retry policy that tells the test when the client has been refused once."""

    refused: threading.Event = field(default_factory=threading.Event)

    def delay(self, attempt: int) -> float:
        self.refused.set()
        return super().delay(attempt)


def test_unavailable_is_retried_until_the_restarted_server_answers(repository, test_videos, tritonserver):
    ports = tuple(free_ports(3))
    tritonserver(repository, ports=ports).start().stop()  # a server was there; now the port refuses connections
    restarted: list[TritonServer] = []
    policy = SignallingPolicy(max_attempts=40, base_delay=0.2, max_delay=2.0)

    def restart() -> None:  # only once the client has been refused: no sleep to guess how long that takes
        if policy.refused.wait(120):
            restarted.append(tritonserver(repository, ports=ports).start())

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        with DeepfakeClient(f"127.0.0.1:{ports[1]}", timeout=60, retry=policy) as client:
            result = client.score_video(test_videos[0].path, 4)
        assert result.attempts > 1 and result.verdict in ("fake", "real", "uncertain")
    finally:
        thread.join()
        for server in restarted:
            server.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_tls_and_an_auth_header_for_a_server_that_requires_both(repository, test_videos, tmp_path, tritonserver):
    """A deployment like one behind a gateway: gRPC over TLS, inference only with a bearer header."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    token = "Bearer test-token"
    required = (f"--grpc-restricted-protocol=inference:authorization={token}",)
    once = RetryPolicy(max_attempts=2, base_delay=0.05)
    with tritonserver(repository, tls_cert=cert, tls_key=key, extra_args=required) as server:
        # Triton wants a restricted protocol's header prefixed; a gateway would take a plain "authorization"
        header = {"triton-grpc-protocol-authorization": token}
        with DeepfakeClient(server.grpc_url, ssl=True, root_certificates=cert, headers=header) as client:
            assert client.is_ready()
            assert client.score_video(test_videos[0].path, 4).verdict in ("fake", "real", "uncertain")
        with DeepfakeClient(server.grpc_url, ssl=True, root_certificates=cert, retry=once) as client:
            with pytest.raises(ScoringError, match="authorization"):
                client.score_video(test_videos[0].path, 4)
        with DeepfakeClient(server.grpc_url, retry=once, timeout=10) as client:  # plain text to a TLS port
            with pytest.raises(ScoringError):
                client.score_video(test_videos[0].path, 4)
