"""The Python-backend models of the CPU ensemble; ``model_repository/<step>/1/model.py`` imports them.

Each builds its state in ``initialize`` (limits from the model config's ``parameters``), handles every request
of an ``execute`` and returns exactly one response per request: bad input becomes that request's
``INVALID_ARG`` error with a message naming the problem, and the other requests and the server carry on.
Each step imports only what it uses, inside its own methods: a stub process loads PyAV, ONNX Runtime, OpenCV or
the kernels only when its step needs them (this module itself needs NumPy alone).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _pb() -> Any:
    """``triton_python_backend_utils``, which exists only inside Triton's Python stub."""
    import triton_python_backend_utils

    return triton_python_backend_utils


def parameters(args: dict[str, str]) -> dict[str, str]:
    """The ``parameters`` of a model config as plain strings."""
    config = json.loads(args["model_config"])
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def thread_count(args: dict[str, str]) -> int:
    """The config's ``threads`` parameter (default 1; 0: the library's default) for ONNX Runtime, FFmpeg and
    Numba. One thread per instance is the CPU variant's choice: Triton already runs steps and instances in
    parallel, and nested thread pools on a few cores only fight (measured in the pipeline benchmark,
    benchmarks/RESULTS.md)."""
    return int(parameters(args).get("threads", 1))


def memory_arena(args: dict[str, str]) -> bool:
    """The config's ``memory_arena`` parameter (default true): whether ONNX Runtime keeps its CPU memory arena,
    which grows to the largest batch a step has run and keeps it (the detector's: about 1 GB after HD videos).
    Off, that memory goes back after each batch, for about a fifth of the throughput (benchmarks/RESULTS.md)."""
    value = parameters(args).get("memory_arena", "true").lower()
    if value not in ("true", "false"):
        raise ValueError(f"parameter memory_arena must be true or false, got {value!r}")
    return value == "true"


def limit_threads(args: dict[str, str]) -> int:
    """``thread_count``, also applied to OpenCV's pool: for the steps that use OpenCV (the others never load it)."""
    import cv2

    threads = thread_count(args)
    cv2.setNumThreads(threads if threads > 0 else -1)  # OpenCV reads 0 as "no threading", -1 as its default
    return threads


def invalid(message: str) -> Any:
    """A response carrying an ``INVALID_ARG`` error (gRPC ``INVALID_ARGUMENT``)."""
    pb = _pb()
    return pb.InferenceResponse(error=pb.TritonError(message, pb.TritonError.INVALID_ARG))


class VideoProbe:
    """``VIDEO`` (the file's bytes) and optional ``NUM_FRAMES`` → ``FRAME_INDEX [F]``, the frames to decode,
    spread evenly over the whole video, and ``ROTATION [1]``, the display rotation (``dfguard.video.upright``).
    Reads the container (only the first frame is decoded) and refuses what is not a usable video or exceeds a
    limit, so the decoder, DALI's included, only ever sees files that open, have frames and fit."""

    def initialize(self, args: dict[str, str]) -> None:
        from dfguard.video import DEFAULT_FRAMES, MAX_FRAME_PIXELS, MAX_TOTAL_PIXELS, MAX_VIDEO_FRAMES

        settings = parameters(args)
        self.default_frames = int(settings.get("default_frames", DEFAULT_FRAMES))
        self.max_frames = int(settings.get("max_frames", 256))
        self.max_video_frames = int(settings.get("max_video_frames", MAX_VIDEO_FRAMES))
        self.max_bytes = int(settings.get("max_bytes", 512 * 2**20))
        self.max_pixels = int(settings.get("max_frame_pixels", MAX_FRAME_PIXELS))
        self.max_total_pixels = int(settings.get("max_total_pixels", MAX_TOTAL_PIXELS))

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self.probe(request) for request in requests]  # one video per request: nothing to batch here

    def probe(self, request: Any) -> Any:
        """One request's response (or its INVALID_ARG error)."""
        from dfguard.video import VideoError, probe_video, sample_indices

        pb = _pb()
        video = pb.get_input_tensor_by_name(request, "VIDEO").as_numpy()
        count_tensor = pb.get_input_tensor_by_name(request, "NUM_FRAMES")
        count = int(count_tensor.as_numpy().reshape(-1)[0]) if count_tensor is not None else self.default_frames
        if video.size > self.max_bytes:
            return invalid(f"video too large: {video.size} bytes (limit {self.max_bytes})")
        if not 1 <= count <= self.max_frames:
            return invalid(f"NUM_FRAMES must be in 1..{self.max_frames}, got {count}")
        try:
            info = probe_video(video.tobytes(), max_frames=self.max_video_frames, max_pixels=self.max_pixels,
                               sampled=count, max_total_pixels=self.max_total_pixels)
        except VideoError as error:
            return invalid(f"bad video: {error}")
        return pb.InferenceResponse([pb.Tensor("FRAME_INDEX", sample_indices(info.frames, count).astype(np.int32)),
                                     pb.Tensor("ROTATION", np.array([info.rotation], np.int32))])


class VideoDecode:
    """``VIDEO`` and ``FRAME_INDEX`` → ``FRAMES [F, H, W, 3]`` as stored, with PyAV (the CPU twin of the DALI
    pipeline in ``dfguard.serving.dali_pipeline``), within the config's limits (``dfguard.video.DecodeLimits``)."""

    def initialize(self, args: dict[str, str]) -> None:
        from dfguard.video import MAX_DECODE_SECONDS, MAX_FRAME_PIXELS, MAX_TOTAL_PIXELS, DecodeLimits

        self.threads = thread_count(args)
        settings = parameters(args)
        self.limits = DecodeLimits(frame_pixels=int(settings.get("max_frame_pixels", MAX_FRAME_PIXELS)),
                                   total_pixels=int(settings.get("max_total_pixels", MAX_TOTAL_PIXELS)),
                                   seconds=float(settings.get("max_decode_seconds", MAX_DECODE_SECONDS)))

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self.decode(request) for request in requests]

    def decode(self, request: Any) -> Any:
        """One request's response (or its INVALID_ARG error)."""
        from dfguard.faces.detect import as_rgb
        from dfguard.video import VideoError, decode_frames

        pb = _pb()
        video = pb.get_input_tensor_by_name(request, "VIDEO").as_numpy()
        indices = pb.get_input_tensor_by_name(request, "FRAME_INDEX").as_numpy().reshape(-1)
        try:
            frames = decode_frames(video.tobytes(), indices, threads=self.threads, limits=self.limits)
            as_rgb(frames[0])  # a frame too small or too large to search for faces is refused here
        except (VideoError, ValueError) as error:
            return invalid(f"bad video: {error}")
        return pb.InferenceResponse([pb.Tensor("FRAMES", frames)])


class ImageDecode:
    """``IMAGE`` (an encoded image's bytes) → ``FRAMES [1, H, W, 3]``: a one-frame video for the steps
    ``deepfake_image`` shares with ``deepfake_video``."""

    def initialize(self, args: dict[str, str]) -> None:
        from dfguard.image import MAX_PIXELS

        limit_threads(args)
        settings = parameters(args)
        self.max_bytes = int(settings.get("max_bytes", 64 * 2**20))
        self.max_pixels = int(settings.get("max_pixels", MAX_PIXELS))

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self.decode(request) for request in requests]

    def decode(self, request: Any) -> Any:
        """One request's response (or its INVALID_ARG error)."""
        from dfguard.faces.detect import as_rgb
        from dfguard.image import ImageError, read_image

        pb = _pb()
        data = pb.get_input_tensor_by_name(request, "IMAGE").as_numpy()
        if data.size > self.max_bytes:
            return invalid(f"image too large: {data.size} bytes (limit {self.max_bytes})")
        try:
            image = as_rgb(read_image(data.tobytes(), max_pixels=self.max_pixels))
        except (ImageError, ValueError) as error:
            return invalid(f"bad image: {error}")
        return pb.InferenceResponse([pb.Tensor("FRAMES", np.ascontiguousarray(image[None]))])


def serving_spec(args: dict[str, str]) -> Any:
    """The repository's ``serving_spec.json`` (written by ``dfguard export --repository``), beside the model folders."""
    from dfguard.inference.spec import read_spec

    return read_spec(Path(args["model_repository"]).parent)


class OnnxModel:
    """An ONNX file (``<model>/<version>/model.onnx``) in ONNX Runtime; inputs and outputs named as in the config.
    All requests of an ``execute`` run as one batch (their frames concatenated), then are split back."""

    def initialize(self, args: dict[str, str]) -> None:
        import onnxruntime

        config = json.loads(args["model_config"])
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = thread_count(args)
        options.enable_cpu_mem_arena = memory_arena(args)
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def execute(self, requests: list[Any]) -> list[Any]:
        pb = _pb()
        arrays = [[pb.get_input_tensor_by_name(r, name).as_numpy() for name in self.inputs] for r in requests]
        batched = {name: np.concatenate([a[k] for a in arrays]) for k, name in enumerate(self.inputs)}
        outputs = self.session.run(self.outputs, batched)
        responses, start = [], 0
        for request_arrays in arrays:  # every request has at least one frame (video_decode guarantees it)
            end = start + request_arrays[0].shape[0]
            responses.append(pb.InferenceResponse([pb.Tensor(name, np.ascontiguousarray(o[start:end]))
                                                   for name, o in zip(self.outputs, outputs, strict=True)]))
            start = end
        return responses


class FaceFinder:
    """``FRAMES [F, H, W, 3]`` (and the video's optional ``ROTATION [1]``: they are turned upright first) → every
    face (``dfguard.faces.search.find_faces``) and its crops: ``FACES [M, 3, S, S]``, ``PARTS [M, 4, 3, P, P]``,
    ``FACE_FRAME [N]`` (the sampled frame), ``FACE_BOX [N, 4]`` (x0, y0, x1, y1 in upright frame pixels),
    ``FACE_TRACK [N]``, ``FRAME_FACES [F]`` (faces per frame). ``M = max(N, 1)``: without a face
    the crops are one black placeholder, because the model steps (a TensorRT plan above all) cannot take a batch
    of 0; ``cluster_classifier`` scores only the N faces that ``FACE_TRACK`` lists.

    The detector is the repository's ``face_detector`` model, called by BLS with at most ``detector_batch``
    windows per call (a 4K frame has about 80), so it never exceeds a TensorRT plan's batch, and Triton's
    dynamic batching merges the calls of concurrent videos; ``detector_calls`` calls are in flight at once, so
    one video keeps every detector instance busy. All requests of an ``execute`` share those calls."""

    def initialize(self, args: dict[str, str]) -> None:
        limit_threads(args)
        spec = serving_spec(args)
        self.detector, self.tracks, self.crop = spec.detector, spec.tracks, spec.crop
        settings = parameters(args)
        self.batch = int(settings.get("detector_batch", 64))
        self.calls = int(settings.get("detector_calls", 2))

    def execute(self, requests: list[Any]) -> list[Any]:
        from dfguard.faces.crops import crop_faces
        from dfguard.faces.search import find_faces_many

        pb = _pb()
        videos = [list(self.upright_frames(request)) for request in requests]
        try:
            found = find_faces_many(videos, self.detector, self.tracks, run_face_detector, self.batch, self.calls)
        except DetectorError as error:
            return [pb.InferenceResponse(error=pb.TritonError(f"face_detector failed: {error}")) for _ in requests]
        responses = []
        for frames, faces in zip(videos, found, strict=True):
            crops = crop_faces(frames, faces, self.crop, rows=1)
            responses.append(pb.InferenceResponse([
                pb.Tensor("FACES", crops.faces), pb.Tensor("PARTS", crops.parts),
                pb.Tensor("FACE_FRAME", faces.frame), pb.Tensor("FACE_BOX", faces.boxes),
                pb.Tensor("FACE_TRACK", faces.track), pb.Tensor("FRAME_FACES", faces.frame_faces)]))
        return responses

    @staticmethod
    def upright_frames(request: Any) -> np.ndarray:
        """A request's ``FRAMES``, turned by its ``ROTATION`` when it has one."""
        from dfguard.video import upright

        pb = _pb()
        frames = pb.get_input_tensor_by_name(request, "FRAMES").as_numpy()
        rotation = pb.get_input_tensor_by_name(request, "ROTATION")
        return frames if rotation is None else upright(frames, int(rotation.as_numpy().reshape(-1)[0]))

class StepError(RuntimeError):
    """A model called by BLS answered with an error (its message); ``invalid``: the input's fault."""

    def __init__(self, message: str, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid

    def response(self) -> Any:
        """The error as a response: ``INVALID_ARG`` for the input's fault, else ``INTERNAL``."""
        pb = _pb()
        return pb.InferenceResponse(error=pb.TritonError(
            str(self), pb.TritonError.INVALID_ARG if self.invalid else pb.TritonError.INTERNAL))


def call_model(model: str, inputs: dict[str, np.ndarray], outputs: list[str], *, checks_input: bool = False
               ) -> dict[str, np.ndarray]:
    """One BLS call to another model of the repository; its outputs in host memory (a GPU step's included).
    ``checks_input``: the model's errors are about its input (video_probe's, video_decode's)."""
    pb = _pb()
    options = {}
    if hasattr(pb, "PreferredMemory"):  # a TensorRT or CuPy step answers from the GPU: ask for host memory
        options["preferred_memory"] = pb.PreferredMemory(pb.TRITONSERVER_MEMORY_CPU, 0)
    request = pb.InferenceRequest(model_name=model, requested_output_names=outputs,
                                  inputs=[pb.Tensor(name, array) for name, array in inputs.items()], **options)
    response = request.exec()
    if response.has_error():
        raise StepError(response.error().message(), invalid=checks_input)
    return {name: host_array(pb.get_output_tensor_by_name(response, name)) for name in outputs}


def run_face_detector(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``face_detector`` on ``inputs [W, 3, S, S]`` through BLS; its outputs in host memory."""
    try:
        outputs = call_model("face_detector", {"DETECTOR_INPUT": inputs}, ["REGRESSORS", "SCORES"])
    except StepError as error:
        raise DetectorError(str(error)) from error
    return outputs["REGRESSORS"], outputs["SCORES"]


class DetectorError(StepError):
    """The ``face_detector`` model answered a BLS call with an error."""


def host_array(tensor: Any) -> np.ndarray:
    """A Python-backend tensor as a NumPy array, copied from the device when it is there."""
    if tensor.is_cpu():
        return tensor.as_numpy()
    import cupy

    return cupy.asnumpy(cupy.from_dlpack(tensor.to_dlpack()))


class DctHighpass:
    """``FACES`` → ``DCT_MAP [F, 1, S, S]`` and ``FREQ_VECTOR [F, 128]``, all requests at once. On a ``KIND_CPU``
    instance the Numba kernel; on ``KIND_GPU`` the CuPy kernel, tensors in and out by DLPack (no host copy)."""

    def initialize(self, args: dict[str, str]) -> None:
        self.cutoff = serving_spec(args).cutoff
        self.gpu = args.get("model_instance_kind") == "GPU"
        threads = thread_count(args)
        if threads > 0 and not self.gpu:
            import numba

            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        if self.gpu:
            import cupy

            cupy.cuda.Device(int(args["model_instance_device_id"])).use()

    def execute(self, requests: list[Any]) -> list[Any]:
        from dfguard.inference.features import frequency_features
        from dfguard.kernels import array_module

        faces = [self._faces(r) for r in requests]
        xp = array_module(faces[0])
        dct_map, vector = frequency_features(xp.concatenate(faces), self.cutoff)
        responses, start = [], 0
        for batch in faces:
            end = start + len(batch)
            responses.append(_pb().InferenceResponse([self._tensor("DCT_MAP", dct_map[start:end]),
                                                      self._tensor("FREQ_VECTOR", vector[start:end])]))
            start = end
        return responses

    def _faces(self, request: Any) -> Any:
        tensor = _pb().get_input_tensor_by_name(request, "FACES")
        if not self.gpu:
            return tensor.as_numpy()
        import cupy

        if tensor.is_cpu():  # face_finder runs on the CPU: its crops arrive in host memory
            return cupy.asarray(tensor.as_numpy())
        return cupy.from_dlpack(tensor.to_dlpack())  # already on the device: shared, not copied

    def _tensor(self, name: str, array: Any) -> Any:
        pb = _pb()
        return pb.Tensor.from_dlpack(name, array) if self.gpu else pb.Tensor(name, array)


class ClusterClassifier:
    """``EMBEDDING [M, 200]``, ``LOGIT [M, 1]`` (the first N rows are faces, the rest ``face_finder``'s
    placeholder), ``FACE_FRAME [N]``, ``FACE_TRACK [N]``, ``FRAME_FACES [F]`` → ``FACE_SCORES [N]``,
    ``FRAME_SCORES [F]`` (a frame's highest face score, NaN without a face), ``TRACK_SCORES [T]`` (the mean of a
    track's faces), ``VIDEO_SCORE [1]`` (the highest score of the tracks that count) and ``VERDICT [1]``
    (fake/real/uncertain, or no_face when no track counts): ``dfguard.scoring.aggregate_faces``."""

    def initialize(self, args: dict[str, str]) -> None:
        spec = serving_spec(args)
        self.scorer, self.tracks = spec.scorer(), spec.tracks

    def execute(self, requests: list[Any]) -> list[Any]:
        pb = _pb()
        responses = []
        for request in requests:
            tensor = lambda name, r=request: pb.get_input_tensor_by_name(r, name).as_numpy()  # noqa: E731
            result = self.scorer.score_faces(tensor("EMBEDDING"), tensor("LOGIT"), tensor("FACE_FRAME"),
                                             tensor("FACE_TRACK"), len(tensor("FRAME_FACES")), self.tracks)
            responses.append(pb.InferenceResponse([
                pb.Tensor("VIDEO_SCORE", np.array([result.video_score], np.float32)),
                pb.Tensor("FRAME_SCORES", result.frame_scores.astype(np.float32)),
                pb.Tensor("FACE_SCORES", result.face_scores.astype(np.float32)),
                pb.Tensor("TRACK_SCORES", result.track_scores.astype(np.float32)),
                pb.Tensor("VERDICT", np.array([result.verdict.encode()], dtype=np.object_))]))
        return responses


class DeepfakeStream:
    """``deepfake_stream`` (decoupled): a video answered in chunks as it is read. ``VIDEO``, optional ``NUM_FRAMES``
    (sampled as ``deepfake_video`` samples) and ``CHUNK_FRAMES`` (sampled frames read per chunk, the config's
    ``chunk_frames`` by default) → one response per chunk whose frames settled, then a final one (``FINAL``
    true) whose tensors equal ``deepfake_video``'s for the same frames.

    Each chunk is decoded by ``video_decode``, searched by ``FaceStream`` (tracks continue across chunks; a frame
    settles once the key frames on either side are searched) with ``face_detector``, and scored by
    ``dct_highpass``, ``rgb_stream``, ``freq_stream`` and ``fusion``, all through BLS; the scoring rule is
    ``cluster_classifier``'s (``VideoScorer.score_faces``) over every face so far. A chunk's response lists its
    frames and faces (``FACE_FRAME`` counts sampled frames from the video's first) and every track so far, with
    ``TRACK_SCORES``, ``VIDEO_SCORE`` and ``VERDICT`` as they stand (a track counts once it has its
    ``min_track_faces``). A bad video or a failing step ends the stream with that request's error.

    ``execute`` hands each request to a thread and returns: ``max_streams`` streams are answered at once by one
    instance (their time is mostly spent waiting on the steps they call), the rest wait their turn."""

    def initialize(self, args: dict[str, str]) -> None:
        import queue
        import threading

        limit_threads(args)
        spec = serving_spec(args)
        self.detector, self.tracks, self.crop, self.scorer = spec.detector, spec.tracks, spec.crop, spec.scorer()
        settings = parameters(args)
        self.chunk_frames = int(settings.get("chunk_frames", 8))
        self.batch = int(settings.get("detector_batch", 64))
        self.calls = int(settings.get("detector_calls", 2))
        self.closing = False
        self.waiting: queue.Queue = queue.Queue()
        # daemon threads: a stream stuck in a call to a step that is unloading must not keep the stub from exiting
        # (a ThreadPoolExecutor's threads are joined at exit: the server then waited 30 s to be killed)
        self.threads = int(settings.get("max_streams", 4))
        for number in range(self.threads):
            threading.Thread(target=self.work, name=f"deepfake_stream-{number}", daemon=True).start()

    def execute(self, requests: list[Any]) -> None:
        for request in requests:  # each stream answers on its own sender, chunk by chunk
            self.waiting.put(request)

    def work(self) -> None:
        """One of the threads that answer streams, one at a time, until the model unloads."""
        while (request := self.waiting.get()) is not None:
            try:
                self.stream(request)
            except Exception as error:  # a send to a client that is gone: the next stream must still be served
                print(f"deepfake_stream: a stream ended early: {error!r}", flush=True)

    def stream(self, request: Any) -> None:
        """Answer one request on its response sender; its last response (the final answer or an error) carries
        the flag that closes it, so a client that leaves at once never finds it half closed."""
        pb = _pb()
        sender, closing = request.get_response_sender(), pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        previous = None
        try:
            for response in self.answer(request):
                if previous is not None:
                    sender.send(previous)
                previous = response
            sender.send(previous, flags=closing)
            return
        except StepError as error:
            last = error.response()
        except Exception as error:  # a bug must still close the stream, or its client waits for ever
            last = pb.InferenceResponse(error=pb.TritonError(f"deepfake_stream failed: {error!r}"))
        if previous is not None:
            sender.send(previous)
        sender.send(last, flags=closing)

    def finalize(self) -> None:
        """Unloading: streams in progress end at their next chunk, those not started with an error (waiting for
        them could wait on steps that are unloading too)."""
        self.closing = True
        for _ in range(self.threads):  # after the streams waiting, which the threads answer with the error first
            self.waiting.put(None)

    def answer(self, request: Any) -> Any:
        """The responses of one request, chunk by chunk, then the final one."""
        from dfguard.faces.search import FaceStream, search_streams
        from dfguard.video import upright

        pb = _pb()
        if self.closing:
            raise StepError("deepfake_stream is unloading: send the video again")
        video = pb.get_input_tensor_by_name(request, "VIDEO").as_numpy()
        chunk = self.chunk_frames
        chunk_tensor = pb.get_input_tensor_by_name(request, "CHUNK_FRAMES")
        if chunk_tensor is not None:
            chunk = int(chunk_tensor.as_numpy().reshape(-1)[0])
        if chunk < 1:
            raise StepError(f"CHUNK_FRAMES must be at least 1, got {chunk}", invalid=True)
        probe = {"VIDEO": video}
        count = pb.get_input_tensor_by_name(request, "NUM_FRAMES")
        if count is not None:
            probe["NUM_FRAMES"] = count.as_numpy()
        probed = call_model("video_probe", probe, ["FRAME_INDEX", "ROTATION"], checks_input=True)
        index, rotation = probed["FRAME_INDEX"], int(probed["ROTATION"].reshape(-1)[0])
        stream = FaceStream(self.detector, self.tracks, len(index))
        scored = _Scored()
        for start in range(0, len(index), chunk):
            if self.closing or request.is_cancelled():  # the server is stopping, or the client went away
                raise StepError("deepfake_stream stopped before the video's end")
            frames = call_model("video_decode", {"VIDEO": video, "FRAME_INDEX": index[start:start + chunk]},
                                ["FRAMES"], checks_input=True)["FRAMES"]
            stream.add(list(upright(frames, rotation)))
            search_streams([stream], run_face_detector, self.batch, self.calls)
            settled = stream.take()
            if settled.images:
                scored.add(settled, self.embed(settled))
                yield self.response(scored, index, final=False)
        yield self.response(scored, index, final=True)

    def embed(self, settled: Any) -> tuple[np.ndarray, np.ndarray]:
        """``EMBEDDING`` and ``LOGIT`` of the settled frames' faces (none: empty)."""
        from dataclasses import replace

        from dfguard.faces.crops import crop_faces

        if not len(settled.found):
            return np.zeros((0, 200), np.float32), np.zeros((0, 1), np.float32)
        crops = crop_faces(settled.images, replace(settled.found, frame=settled.found.frame - settled.first),
                           self.crop)
        features = call_model("dct_highpass", {"FACES": crops.faces}, ["DCT_MAP", "FREQ_VECTOR"])
        rgb = call_model("rgb_stream", {"FACES": crops.faces, "PARTS": crops.parts}, ["RGB_FEATURES"])
        freq = call_model("freq_stream", features, ["FREQ_FEATURES"])
        fused = call_model("fusion", rgb | freq, ["EMBEDDING", "LOGIT"])
        return fused["EMBEDDING"], fused["LOGIT"]

    def response(self, scored: _Scored, index: np.ndarray, final: bool) -> Any:
        """The last chunk's response (its frames and faces) or the final one (every frame and face)."""
        pb = _pb()
        result = self.scorer.score_faces(scored.embedding, scored.logit, scored.frame, scored.track, len(index),
                                         self.tracks)
        frames = slice(0, scored.frames) if final else slice(scored.chunk_start, scored.frames)
        faces = slice(0, len(scored.frame)) if final else slice(scored.chunk_faces, len(scored.frame))
        return pb.InferenceResponse([
            pb.Tensor("VIDEO_SCORE", np.array([result.video_score], np.float32)),
            pb.Tensor("FRAME_INDEX", index[frames].astype(np.int32)),
            pb.Tensor("FRAME_SCORES", result.frame_scores[frames].astype(np.float32)),
            pb.Tensor("FACE_SCORES", result.face_scores[faces].astype(np.float32)),
            pb.Tensor("FACE_FRAME", scored.frame[faces]), pb.Tensor("FACE_BOX", scored.box[faces]),
            pb.Tensor("FACE_TRACK", scored.track[faces]),
            pb.Tensor("TRACK_SCORES", result.track_scores.astype(np.float32)),
            pb.Tensor("VERDICT", np.array([result.verdict.encode()], dtype=np.object_)),
            pb.Tensor("FRAME_START", np.array([frames.start], np.int32)), pb.Tensor("FINAL", np.array([final]))])


class _Scored:
    """Every face a stream has scored so far, and where the last chunk's frames and faces begin."""

    def __init__(self) -> None:
        self.embedding = np.zeros((0, 200), np.float32)
        self.logit = np.zeros((0, 1), np.float32)
        self.frame = np.zeros(0, np.int32)
        self.track = np.zeros(0, np.int32)
        self.box = np.zeros((0, 4), np.float32)
        self.frames = self.chunk_start = self.chunk_faces = 0

    def add(self, settled: Any, features: tuple[np.ndarray, np.ndarray]) -> None:
        """Append a chunk's settled frames and their faces' features."""
        found = settled.found
        self.chunk_start, self.chunk_faces = settled.first, len(self.frame)
        self.frames = settled.first + len(settled.images)
        self.embedding = np.concatenate([self.embedding, features[0]])
        self.logit = np.concatenate([self.logit, features[1]])
        self.frame = np.concatenate([self.frame, found.frame.astype(np.int32)])
        self.track = np.concatenate([self.track, found.track.astype(np.int32)])
        self.box = np.concatenate([self.box, found.boxes.astype(np.float32)])
