"""deepfake_stream in the real CPU ensemble: a video answered chunk by chunk over gRPC's bidirectional stream, its
tracks continued across chunks, its final answer the one-shot answer of deepfake_video."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import numpy as np
import pytest
from helpers import DFGUARD

from dfguard.answer import Score, Update
from dfguard.client import AsyncDeepfakeClient, DeepfakeClient, ScoringError


def assert_same_answer(streamed: Score, one_shot: Score) -> None:
    """What a user compares: verdict, scores, frames, every face (frame, box, track, score) and every track."""
    assert streamed.verdict == one_shot.verdict
    assert streamed.score == pytest.approx(one_shot.score, abs=1e-5)
    np.testing.assert_array_equal(streamed.frame_index, one_shot.frame_index)
    np.testing.assert_allclose(streamed.frame_scores, one_shot.frame_scores, atol=1e-5)
    assert [(f.frame, f.track) for f in streamed.faces] == [(f.frame, f.track) for f in one_shot.faces]
    np.testing.assert_allclose([f.box for f in streamed.faces], [f.box for f in one_shot.faces], atol=0.02)
    np.testing.assert_allclose([f.score for f in streamed.faces], [f.score for f in one_shot.faces], atol=1e-5)
    assert [(t.id, t.faces, t.first_frame, t.last_frame) for t in streamed.tracks] == [
        (t.id, t.faces, t.first_frame, t.last_frame) for t in one_shot.tracks]


def assert_chunks_make_the_whole(updates: list[Update]) -> None:
    """The chunks' frames and faces, in order, are the final answer's; each chunk's tracks are those its faces and
    the earlier chunks' have, counted as the final answer counts them."""
    *chunks, final = updates
    assert final.final and not any(u.final for u in chunks) and len(chunks) >= 2
    np.testing.assert_array_equal(np.concatenate([u.score.frame_index for u in chunks]), final.score.frame_index)
    np.testing.assert_allclose(np.concatenate([u.score.frame_scores for u in chunks]), final.score.frame_scores,
                               atol=1e-5)
    assert [f for u in chunks for f in u.score.faces] == list(final.score.faces)
    seen: list = []
    for update in chunks:
        seen += update.score.faces
        assert [t.faces for t in update.score.tracks] == [sum(f.track == t.id for f in seen)
                                                          for t in update.score.tracks]


def test_a_video_streamed_in_chunks_ends_with_the_one_shot_answer(served, two_people):
    """Two people over 16 sampled frames, 3 frames per chunk: an update per chunk as it settles (the first well
    before the video's end), both tracks continued across chunks (two tracks, not one per chunk), and the final
    answer equal to deepfake_video's, through the sync client and two streams at once through the async one."""
    video = two_people["forged"].path
    with DeepfakeClient(served.grpc_url) as client:
        one_shot = client.score_video(video, 16)
        updates = list(client.stream(video, 16, chunk_frames=3))
    assert len(one_shot.tracks) == 2 and one_shot.verdict == "fake"
    assert len(updates) >= 5 and len(updates[0].score.frame_index) <= 6
    assert_chunks_make_the_whole(updates)
    assert_same_answer(updates[-1].score, one_shot)
    assert updates[-1].score.model == "deepfake_stream"
    # the forged person's track reaches the verdict before the video ends
    assert any(u.score.verdict == "fake" for u in updates[:-1])

    async def stream(client: AsyncDeepfakeClient, chunk: int) -> list[tuple[float, Update]]:
        return [(time.monotonic(), update) async for update in client.stream(video.read_bytes(), 16, chunk)]

    async def two_at_once() -> list[list[tuple[float, Update]]]:
        async with AsyncDeepfakeClient(served.grpc_url) as client:
            return await asyncio.gather(stream(client, 5), stream(client, 4))

    both = asyncio.run(two_at_once())
    for timed in both:
        assert_chunks_make_the_whole([update for _, update in timed])
        assert_same_answer(timed[-1][1].score, one_shot)
    # one instance answers both at once: each stream's first update comes before the other's final one
    assert both[0][0][0] < both[1][-1][0] and both[1][0][0] < both[0][-1][0]


def test_a_bad_stream_request_is_a_named_error_and_the_server_keeps_serving(served, two_people):
    """A stream's error reaches the client as its message alone (gRPC's stream carries no status per response),
    so it is not taken for a transient failure and not resent."""
    with DeepfakeClient(served.grpc_url) as client:
        with pytest.raises(ScoringError, match="bad video: not a readable video") as bad:
            list(client.stream(b"\x00not a video" * 100))
        assert bad.value.attempts == 1
        with pytest.raises(ScoringError, match="CHUNK_FRAMES must be at least 1, got 0"):
            list(client.stream(two_people["real"].path, 8, chunk_frames=0))
        with pytest.raises(ScoringError, match=r"NUM_FRAMES must be in 1\.\.256, got 100000"):
            list(client.stream(two_people["real"].path, 100000))
        updates = client.stream(two_people["real"].path, 8)
        assert next(updates).score.model == "deepfake_stream"  # still serving
        updates.close()  # a client that leaves mid-stream: the server stops that stream at its next chunk


def test_score_stream_prints_a_line_per_chunk_and_records_the_one_shot_answer(served, two_people, tmp_path):
    """``dfguard score --stream``: a line per chunk, the last the final verdict, and the record the one-shot
    answer."""
    video = two_people["forged"].path
    common = ["--url", served.grpc_url, "--num-frames", "16", "--no-progress"]
    streamed = subprocess.run([DFGUARD, "score", str(video), "--out", str(tmp_path / "streamed.jsonl"), "--stream",
                               *common], capture_output=True, text=True, timeout=300)
    assert streamed.returncode == 0, streamed.stderr
    lines = [line for line in streamed.stdout.splitlines() if line.startswith(f"{video}: ")]
    assert len(lines) >= 3 and lines[-1].startswith(f"{video}: final: fake")
    assert lines[0].startswith(f"{video}: frames 0-") and "tracks P(fake) (faces): #0" in lines[0]
    with DeepfakeClient(served.grpc_url) as client:
        one_shot = client.score_video(video, 16)
    (record,) = [json.loads(line) for line in (tmp_path / "streamed.jsonl").read_text().splitlines()]
    assert record["verdict"] == one_shot.verdict and record["frame_index"] == one_shot.frame_index.tolist()
    assert record["score"] == pytest.approx(one_shot.score, abs=1e-5)
    assert [(t["id"], t["faces"]) for t in record["tracks"]] == [(t.id, t.faces) for t in one_shot.tracks]
    assert [(f["frame"], f["track"]) for f in record["faces"]] == [(f.frame, f.track) for f in one_shot.faces]
