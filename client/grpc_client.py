"""``DeepfakeClient`` (synchronous) and ``AsyncDeepfakeClient`` (``asyncio``): the ensembles over gRPC.

Every call has a deadline; transient failures (``UNAVAILABLE``: the server restarting or unreachable,
``DEADLINE_EXCEEDED``) are retried with exponential backoff and jitter, anything else (``INVALID_ARGUMENT``: the
input is bad) raises ``ScoringError`` at once. Results are ``dfguard.answer.Score``.
"""

from __future__ import annotations

import asyncio
import queue
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from dfguard.answer import Face, Score, Update, faces_and_tracks, faces_of, tracks_of
from dfguard.errors import DfguardError

VIDEO_MODEL = "deepfake_video"
IMAGE_MODEL = "deepfake_image"
STREAM_MODEL = "deepfake_stream"
RETRYABLE = frozenset({"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"})
# channel_args replace tritonclient's defaults, of which these two matter: a 4K video is larger than gRPC's 4 MB
MESSAGE_SIZE_ARGS = (("grpc.max_send_message_length", 2**31 - 1), ("grpc.max_receive_message_length", 2**31 - 1))

T = TypeVar("T")


class ScoringError(DfguardError):
    """A request the server refused or could not answer: ``status`` is the gRPC status (e.g.
    ``StatusCode.INVALID_ARGUMENT``), ``attempts`` how many times it was sent."""

    def __init__(self, message: str, status: str, attempts: int) -> None:
        super().__init__(message)
        self.status, self.attempts = status, attempts


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff on transient errors: ``base_delay · 2^k`` seconds (capped, ±50 % jitter), at most
    ``max_attempts`` sends in all."""

    max_attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed send (1-based)."""
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the server: ``url`` is ``host:port`` of gRPC; TLS files (PEM) and extra headers
    (e.g. ``{"authorization": "Bearer …"}``) are for deployments behind a gateway."""

    url: str = "127.0.0.1:8001"
    timeout: float = 60.0  # the per-call deadline, seconds
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    ssl: bool = False
    root_certificates: Path | None = None
    private_key: Path | None = None
    certificate_chain: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of ``tritonclient.grpc(.aio).InferenceServerClient``. A ``dns:///name:port`` URL (a
        Kubernetes headless Service) gets gRPC's round-robin policy: each request goes to the next of the addresses
        the name resolves to, where a plain ``host:port`` keeps one connection to one of them."""
        options: dict[str, Any] = {"url": self.url}
        if self.url.startswith("dns:"):
            options["channel_args"] = [*MESSAGE_SIZE_ARGS, ("grpc.lb_policy_name", "round_robin")]
        if self.ssl:
            options |= {"ssl": True, "root_certificates": _path(self.root_certificates),
                        "private_key": _path(self.private_key), "certificate_chain": _path(self.certificate_chain)}
        return options


def _path(path: Path | None) -> str | None:
    return str(path) if path else None


def encoded_input(grpc_module: Any, name: str, data: bytes) -> Any:
    """A file's bytes as the UINT8 ``[N]`` input ``name`` (``VIDEO`` or ``IMAGE``)."""
    tensor = grpc_module.InferInput(name, [len(data)], "UINT8")
    tensor.set_data_from_numpy(np.frombuffer(data, np.uint8))
    return tensor


def video_inputs(grpc_module: Any, data: bytes, num_frames: int | None) -> list[Any]:
    """``VIDEO`` (and ``NUM_FRAMES``) inputs of ``deepfake_video``."""
    video = encoded_input(grpc_module, "VIDEO", data)
    if num_frames is None:
        return [video]
    count = grpc_module.InferInput("NUM_FRAMES", [1], "INT32")
    count.set_data_from_numpy(np.array([num_frames], np.int32))
    return [video, count]


def parse_result(result: Any, model: str, attempts: int) -> Score:
    """A ``Score`` from an ``InferResult`` of either ensemble (an image is a one-frame video whose every face is
    its own track)."""
    response = result.get_response()
    verdict = result.as_numpy("VERDICT")[0].decode()
    face_scores, boxes = result.as_numpy("FACE_SCORES"), result.as_numpy("FACE_BOX")
    if model == VIDEO_MODEL:
        score = float(result.as_numpy("VIDEO_SCORE")[0])
        frames, index = result.as_numpy("FRAME_SCORES").astype(np.float32), result.as_numpy("FRAME_INDEX")
        face_frame, face_track, track_scores = (result.as_numpy(name) for name in
                                                ("FACE_FRAME", "FACE_TRACK", "TRACK_SCORES"))
    else:
        score = float(result.as_numpy("SCORE")[0])
        frames, index = np.array([score], np.float32), np.zeros(1, np.int64)
        face_frame, face_track, track_scores = np.zeros(len(face_scores), int), np.arange(len(face_scores)), face_scores
    faces, tracks = faces_and_tracks(face_scores, face_frame, boxes, face_track, track_scores, index)
    return Score(score, verdict, frames, index.astype(np.int64), response.model_name, response.model_version,
                 attempts, faces, tracks)


def stream_inputs(grpc_module: Any, data: bytes, num_frames: int | None, chunk_frames: int | None) -> list[Any]:
    """``VIDEO`` (and ``NUM_FRAMES``, ``CHUNK_FRAMES``) inputs of ``deepfake_stream``."""
    inputs = video_inputs(grpc_module, data, num_frames)
    if chunk_frames is not None:
        chunk = grpc_module.InferInput("CHUNK_FRAMES", [1], "INT32")
        chunk.set_data_from_numpy(np.array([chunk_frames], np.int32))
        inputs.append(chunk)
    return inputs


class StreamedVideo:
    """The updates of one streamed video, parsed as they come: each response's faces are kept, so every update
    carries every track so far with its faces counted from the first chunk."""

    def __init__(self) -> None:
        self.faces: list[Face] = []

    def update(self, result: Any) -> Update:
        """An ``Update`` from one ``deepfake_stream`` response."""
        response = result.get_response()
        index, start = result.as_numpy("FRAME_INDEX").astype(np.int64), int(result.as_numpy("FRAME_START")[0])
        final = bool(result.as_numpy("FINAL")[0])
        faces = faces_of(result.as_numpy("FACE_SCORES"), result.as_numpy("FACE_FRAME") - (0 if final else start),
                         result.as_numpy("FACE_BOX"), result.as_numpy("FACE_TRACK"), index)
        self.faces = list(faces) if final else self.faces + list(faces)
        score = Score(float(result.as_numpy("VIDEO_SCORE")[0]), result.as_numpy("VERDICT")[0].decode(),
                      result.as_numpy("FRAME_SCORES").astype(np.float32), index, response.model_name,
                      response.model_version, 1, faces, tracks_of(self.faces, result.as_numpy("TRACK_SCORES")))
        return Update(score, final)


def _read(data: bytes | Path | str) -> bytes:
    return data if isinstance(data, bytes) else Path(data).read_bytes()


def backoff_or_raise(error: Any, attempt: int, policy: RetryPolicy) -> float:
    """Seconds to wait before resending after ``error`` (an ``InferenceServerException``), or raise it as a
    ``ScoringError`` when it is not transient or the attempts are used up."""
    status = str(error.status() or "UNKNOWN")
    if status not in RETRYABLE or attempt >= policy.max_attempts:
        raise ScoringError(f"{status}: {error.message()}", status, attempt) from error
    return policy.delay(attempt)


class DeepfakeClient:
    """Blocking client. ``with DeepfakeClient("127.0.0.1:8001") as c: print(c.score_video("clip.mp4").score)``.

    One instance is meant for one thread; create one per worker thread (they are cheap)."""

    def __init__(self, url: str | Connection = "127.0.0.1:8001", **options: Any) -> None:
        import tritonclient.grpc as grpc

        self.connection = url if isinstance(url, Connection) else Connection(url, **options)
        self._grpc = grpc
        self._client = grpc.InferenceServerClient(**self.connection.client_options())

    def score_video(self, video: bytes | Path | str, num_frames: int | None = None) -> Score:
        """Score one video file (or its bytes); ``num_frames`` defaults to the server's (32)."""
        inputs = video_inputs(self._grpc, _read(video), num_frames)
        return self._infer(VIDEO_MODEL, inputs)

    def score_image(self, image: bytes | Path | str) -> Score:
        """Score one image file (or its bytes)."""
        return self._infer(IMAGE_MODEL, [encoded_input(self._grpc, "IMAGE", _read(image))])

    def stream(self, video: bytes | Path | str, num_frames: int | None = None, chunk_frames: int | None = None
               ) -> Iterator[Update]:
        """Score one video as the server reads it: an ``Update`` per chunk as soon as it is scored, the last one
        ``final`` (``deepfake_stream``, over gRPC's bidirectional stream). The per-call deadline applies to each
        update; a transient failure before the first update is retried, one after it raises ``ScoringError``."""
        inputs = stream_inputs(self._grpc, _read(video), num_frames, chunk_frames)
        attempt = 1
        while True:
            answers: queue.Queue = queue.Queue()
            self._client.start_stream(lambda result, error, box=answers: box.put((result, error)),
                                      headers=self.connection.headers)
            streamed, sent, final = StreamedVideo(), 0, False
            try:
                self._client.async_stream_infer(STREAM_MODEL, inputs)
                while True:
                    try:
                        result, error = answers.get(timeout=self.connection.timeout)
                    except queue.Empty:
                        raise ScoringError(f"no update from {STREAM_MODEL} in {self.connection.timeout:g} s",
                                           "StatusCode.DEADLINE_EXCEEDED", attempt) from None
                    if error is not None:
                        if sent:
                            raise ScoringError(f"{error.status()}: {error.message()}", str(error.status()), attempt)
                        break
                    update = streamed.update(result)
                    sent, final = sent + 1, update.final
                    yield update
                    if final:
                        return
            finally:  # the server has ended a stream whose final update came; any other is cancelled
                self._client.stop_stream(cancel_requests=not final)
            time.sleep(backoff_or_raise(error, attempt, self.connection.retry))
            attempt += 1

    def is_ready(self, model: str = VIDEO_MODEL) -> bool:
        """The server is live and ready and ``model`` is ready (False when unreachable)."""
        from tritonclient.utils import InferenceServerException

        options = {"headers": self.connection.headers, "client_timeout": self.connection.timeout}
        try:
            return bool(self._client.is_server_ready(**options) and self._client.is_model_ready(model, **options))
        except InferenceServerException:
            return False

    def wait_until_ready(self, timeout: float = 60.0, model: str = VIDEO_MODEL) -> None:
        """Block until ``is_ready`` or raise ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while not self.is_ready(model):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{model} at {self.connection.url} not ready after {timeout:.0f} s")
            time.sleep(0.5)

    def model_metadata(self, model: str = VIDEO_MODEL) -> dict:
        """The model's name, versions, inputs and outputs as the server reports them."""
        return self._with_retries(lambda: self._client.get_model_metadata(
            model, headers=self.connection.headers, as_json=True, client_timeout=self.connection.timeout))[0]

    def close(self) -> None:
        """Close the channel."""
        self._client.close()

    def __enter__(self) -> DeepfakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _infer(self, model: str, inputs: list[Any]) -> Score:
        result, attempts = self._with_retries(lambda: self._client.infer(
            model, inputs, headers=self.connection.headers, client_timeout=self.connection.timeout))
        return parse_result(result, model, attempts)

    def _with_retries(self, call: Callable[[], T]) -> tuple[T, int]:
        from tritonclient.utils import InferenceServerException

        attempt = 1
        while True:
            try:
                return call(), attempt
            except InferenceServerException as error:
                time.sleep(backoff_or_raise(error, attempt, self.connection.retry))
            attempt += 1


class AsyncDeepfakeClient:
    """The ``asyncio`` client: ``async with AsyncDeepfakeClient(url) as c: score = await c.score_video(path)``.
    Many calls may be in flight at once on one instance."""

    def __init__(self, url: str | Connection = "127.0.0.1:8001", **options: Any) -> None:
        import tritonclient.grpc as grpc
        import tritonclient.grpc.aio as aio

        self.connection = url if isinstance(url, Connection) else Connection(url, **options)
        self._grpc = grpc
        self._client = aio.InferenceServerClient(**self.connection.client_options())

    async def score_video(self, video: bytes | Path | str, num_frames: int | None = None) -> Score:
        """Score one video file (or its bytes); the file is read off the event loop."""
        inputs = video_inputs(self._grpc, await asyncio.to_thread(_read, video), num_frames)
        return await self._infer(VIDEO_MODEL, inputs)

    async def score_image(self, image: bytes | Path | str) -> Score:
        """Score one image file (or its bytes)."""
        data = await asyncio.to_thread(_read, image)
        return await self._infer(IMAGE_MODEL, [encoded_input(self._grpc, "IMAGE", data)])

    async def stream(self, video: bytes | Path | str, num_frames: int | None = None,
                     chunk_frames: int | None = None) -> AsyncIterator[Update]:
        """``DeepfakeClient.stream``, asynchronously: ``async for update in client.stream(path)``."""
        inputs = stream_inputs(self._grpc, await asyncio.to_thread(_read, video), num_frames, chunk_frames)
        attempt = 1
        while True:
            async def requests() -> AsyncIterator[dict]:
                yield {"model_name": STREAM_MODEL, "inputs": inputs}

            streamed, sent = StreamedVideo(), 0
            answers = self._client.stream_infer(requests(), headers=self.connection.headers)
            error = None
            async for result, error in answers:
                if error is not None:
                    if sent:
                        raise ScoringError(f"{error.status()}: {error.message()}", str(error.status()), attempt)
                    break
                update = streamed.update(result)
                sent += 1
                if update.final:  # let the server end the stream before the caller can stop listening: a stream
                    async for _ in answers:  # cancelled between the final update and its end holds the model
                        pass
                    yield update
                    return
                yield update
            if error is None:
                raise ScoringError(f"{STREAM_MODEL} ended the stream without a final update", "StatusCode.UNKNOWN",
                                   attempt)
            await asyncio.sleep(backoff_or_raise(error, attempt, self.connection.retry))
            attempt += 1

    async def is_ready(self, model: str = VIDEO_MODEL) -> bool:
        """The server is ready and ``model`` is ready (False when unreachable)."""
        from tritonclient.utils import InferenceServerException

        options = {"headers": self.connection.headers, "client_timeout": self.connection.timeout}
        try:
            return bool(await self._client.is_server_ready(**options)
                        and await self._client.is_model_ready(model, **options))
        except InferenceServerException:
            return False

    async def model_metadata(self, model: str = VIDEO_MODEL) -> dict:
        """The model's name, versions, inputs and outputs as the server reports them."""
        return (await self._with_retries(lambda: self._client.get_model_metadata(
            model, headers=self.connection.headers, as_json=True, client_timeout=self.connection.timeout)))[0]

    async def close(self) -> None:
        """Close the channel."""
        await self._client.close()

    async def __aenter__(self) -> AsyncDeepfakeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _infer(self, model: str, inputs: list[Any]) -> Score:
        result, attempts = await self._with_retries(lambda: self._client.infer(
            model, inputs, headers=self.connection.headers, client_timeout=self.connection.timeout))
        return parse_result(result, model, attempts)

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        from tritonclient.utils import InferenceServerException

        attempt = 1
        while True:
            try:
                return await call(), attempt
            except InferenceServerException as error:
                await asyncio.sleep(backoff_or_raise(error, attempt, self.connection.retry))
            attempt += 1
