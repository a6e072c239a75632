"""Hostile and unusual uploads against the served CPU ensemble: each gets an answer or a per-request
INVALID_ARGUMENT naming the problem, within a time limit, and the server stays ready (the corpus: hostile.py)."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
import tritonclient.grpc as grpc
from helpers import tensor
from hostile import ANSWER, VIDEO, Case, clip_mp4, corpus
from tritonclient.utils import InferenceServerException

from dfguard.client.grpc_client import encoded_input, video_inputs
from dfguard.scoring import VERDICTS
from dfguard.serving.processes import tree_pss_mib

SECONDS_PER_REQUEST = 60  # the 8K frame, the slowest case, takes about 7 s on a 2-core machine
CASES = corpus()


def send(url: str, case: Case) -> tuple[str, str]:
    """``("answer", verdict)`` or ``(gRPC status, message)``."""
    client = grpc.InferenceServerClient(url)
    inputs = (video_inputs(grpc, case.data, case.num_frames) if case.model == VIDEO
              else [encoded_input(grpc, "IMAGE", case.data)])
    try:
        result = client.infer(case.model, inputs, client_timeout=SECONDS_PER_REQUEST)
    except InferenceServerException as error:
        return str(error.status()), error.message()
    return ANSWER, result.as_numpy("VERDICT")[0].decode()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_upload_gets_an_answer_or_a_named_error_in_time(served, case):
    start = time.monotonic()
    status, detail = send(served.grpc_url, case)
    assert time.monotonic() - start < SECONDS_PER_REQUEST
    if status == ANSWER:
        assert re.search(case.expect, ANSWER), f"answered {detail!r}, expected an error matching {case.expect!r}"
        assert detail in VERDICTS
        assert not case.face or detail != "no_face", "a clear face in every frame, and none found"
    else:
        assert status == "StatusCode.INVALID_ARGUMENT", (status, detail)
        assert re.search(case.expect, detail), detail
    assert grpc.InferenceServerClient(served.grpc_url).is_server_ready()


MALFORMED = {  # requests to deepfake_video that Triton itself must refuse, naming the tensor
    # Triton 2.51 does not check an ensemble's required inputs up front: without VIDEO the ensemble stops with
    # "unexpected deadlock, at least one output is not set" (still INVALID_ARGUMENT, still per request)
    "no VIDEO": (lambda v: [tensor("NUM_FRAMES", np.array([4], np.int32), "INT32")],
                 "VIDEO|at least one output is not set"),
    "a misnamed input": (lambda v: [tensor("VIDEOS", v, "UINT8")], "VIDEOS"),
    "an extra input": (lambda v: [tensor("VIDEO", v, "UINT8"), tensor("AUDIO", v, "UINT8")], "AUDIO"),
    "VIDEO as FP32": (lambda v: [tensor("VIDEO", v.astype(np.float32), "FP32")], "VIDEO.*(FP32|UINT8)"),
    "VIDEO in two dimensions": (lambda v: [tensor("VIDEO", v[: len(v) // 2 * 2].reshape(2, -1), "UINT8")], "VIDEO"),
    "NUM_FRAMES as INT64": (lambda v: [tensor("VIDEO", v, "UINT8"), tensor("NUM_FRAMES", np.array([4], np.int64),
                                                                          "INT64")], "NUM_FRAMES.*(INT64|INT32)"),
    "NUM_FRAMES of two values": (lambda v: [tensor("VIDEO", v, "UINT8"),
                                            tensor("NUM_FRAMES", np.array([4, 8], np.int32), "INT32")], "NUM_FRAMES"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_requests_are_refused_by_name(served, name):
    make, pattern = MALFORMED[name]
    client = grpc.InferenceServerClient(served.grpc_url)
    video = np.frombuffer(clip_mp4(), np.uint8)
    with pytest.raises(InferenceServerException) as error:
        client.infer(VIDEO, make(video), client_timeout=SECONDS_PER_REQUEST)
    assert error.value.status() == "StatusCode.INVALID_ARGUMENT", error.value.message()
    assert re.search(pattern, error.value.message()), error.value.message()
    assert client.is_server_ready()


def test_the_corpus_is_wide():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)
    assert {c.expect == ANSWER for c in CASES} == {True, False}  # uploads to answer and uploads to refuse


def test_the_servers_memory_stays_at_its_baseline_through_the_corpus(served):
    """After one pass (every step has loaded what it uses, and held the 8K frame once), a second pass over the
    whole corpus leaves tritonserver and its stubs within 10 % of that baseline (PSS): nothing leaks per request."""
    for case in CASES:  # the first pass (the parametrized test above ran it too, in this session's order)
        send(served.grpc_url, case)
    baseline = tree_pss_mib(served.process.pid)
    for case in CASES:
        send(served.grpc_url, case)
    after = tree_pss_mib(served.process.pid)
    print(f"server PSS: {baseline:.0f} MiB after one pass, {after:.0f} MiB after a second")
    assert after <= 1.1 * baseline
    assert grpc.InferenceServerClient(served.grpc_url).is_server_ready()
