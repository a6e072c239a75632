"""The Python-backend models of the CPU ensemble; ``model_repository/<step>/1/model.py`` imports them.

Each builds its state in ``initialize`` (limits from the model config's ``parameters``), handles every request
of an ``execute`` and returns exactly one response per request: bad input becomes that request's
``INVALID_ARG`` error with a message naming the problem, and the other requests and the server carry on.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from dfguard.faces.detect import detector_input
from dfguard.video import VideoError, read_frames


def _pb() -> Any:
    """``triton_python_backend_utils``, which exists only inside Triton's Python stub."""
    import triton_python_backend_utils

    return triton_python_backend_utils


def parameters(args: dict[str, str]) -> dict[str, str]:
    """The ``parameters`` of a model config as plain strings."""
    config = json.loads(args["model_config"])
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def invalid(message: str) -> Any:
    """A response carrying an ``INVALID_ARG`` error (gRPC ``INVALID_ARGUMENT``)."""
    pb = _pb()
    return pb.InferenceResponse(error=pb.TritonError(message, pb.TritonError.INVALID_ARG))


class VideoDecode:
    """``VIDEO`` (the file's bytes) and optional ``NUM_FRAMES`` → ``FRAMES [F, H, W, 3]``, ``FRAME_INDEX [F]``
    (frames spread evenly over the whole video) and ``DETECTOR_INPUT [F, 3, 128, 128]``."""

    def initialize(self, args: dict[str, str]) -> None:
        settings = parameters(args)
        self.default_frames = int(settings.get("default_frames", 32))
        self.max_frames = int(settings.get("max_frames", 256))
        self.max_video_frames = int(settings.get("max_video_frames", 100_000))
        self.max_bytes = int(settings.get("max_bytes", 512 * 2**20))

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self.decode(request) for request in requests]  # one video per request: nothing to batch here

    def decode(self, request: Any) -> Any:
        """One request's response (or its INVALID_ARG error)."""
        pb = _pb()
        video = pb.get_input_tensor_by_name(request, "VIDEO").as_numpy()
        count_tensor = pb.get_input_tensor_by_name(request, "NUM_FRAMES")
        count = int(count_tensor.as_numpy().reshape(-1)[0]) if count_tensor is not None else self.default_frames
        if video.size > self.max_bytes:
            return invalid(f"video too large: {video.size} bytes (limit {self.max_bytes})")
        if not 1 <= count <= self.max_frames:
            return invalid(f"NUM_FRAMES must be in 1..{self.max_frames}, got {count}")
        try:
            frames = read_frames(video.tobytes(), count, max_frames=self.max_video_frames)
            detector = detector_input(list(frames.images))
        except (VideoError, ValueError) as error:
            return invalid(f"bad video: {error}")
        return pb.InferenceResponse([pb.Tensor("FRAMES", frames.images),
                                     pb.Tensor("FRAME_INDEX", frames.indices.astype(np.int32)),
                                     pb.Tensor("DETECTOR_INPUT", detector)])
