"""``video_decode`` of the GPU variant: the DALI pipeline's graph. ``model_repository/video_decode/1/dali.py`` wraps it
in the one ``@autoserialize`` pipeline, which Triton's DALI backend serializes when it loads the model.

The pipeline takes what ``video_probe`` decided (``FRAME_INDEX``) and decodes exactly those frames, with NVDEC on
the GPU (``device="mixed"``) or FFmpeg on the CPU (the same graph; DALI's CPU decoder reads VP8/VP9/MJPEG only,
which is how the tests run it). Its outputs are the CPU variant's: ``FRAMES [F, H, W, 3]`` uint8 and
``DETECTOR_INPUT [F, 3, 128, 128]`` float32, the frames letterboxed for BlazeFace with the same affine map as
``dfguard.faces.detect.letterbox`` (MediaPipe's), so both variants feed the detector the same pixels up to the
decoders' colour conversion and one level of rounding.
"""

from __future__ import annotations

from typing import Any

from dfguard.faces.weights import INPUT_SIZE

DECODER_DEVICES = ("mixed", "cpu")


def letterbox_matrix(frames: Any) -> Any:
    """The source→destination affine map fitting each sequence's frames into ``INPUT_SIZE²``, centred.

    ``letterbox`` warps with OpenCV, which samples at integer pixel coordinates; DALI samples at pixel centres
    (``+0.5``). Shifting the translation by ``0.5·(1 − scale)`` makes DALI sample the very points OpenCV does.
    """
    import nvidia.dali.fn as fn
    import nvidia.dali.math as dmath
    import nvidia.dali.types as types

    shape = frames.shape(dtype=types.FLOAT)  # F, H, W, C; on the CPU even for frames on the GPU
    height, width = shape[1], shape[2]
    scale = INPUT_SIZE / dmath.max(height, width)
    centre_shift = 0.5 * (1.0 - scale)
    left = (INPUT_SIZE - scale * width) / 2 + centre_shift
    top = (INPUT_SIZE - scale * height) / 2 + centre_shift
    zero = scale * 0.0
    return fn.stack(fn.stack(scale, zero, left), fn.stack(zero, scale, top))


def video_decode_graph(decoder_device: str) -> tuple[Any, Any]:
    """The pipeline's body: ``VIDEO`` and ``FRAME_INDEX`` in, ``FRAMES`` and ``DETECTOR_INPUT`` out."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    if decoder_device not in DECODER_DEVICES:
        raise ValueError(f"decoder_device must be one of {DECODER_DEVICES}, got {decoder_device!r}")
    video = fn.external_source(name="VIDEO", dtype=types.UINT8, ndim=1, device="cpu")
    index = fn.external_source(name="FRAME_INDEX", dtype=types.INT32, ndim=1, device="cpu")
    frames = fn.decoders.video(video, frames=index, device=decoder_device, pad_mode="none")
    boxed = fn.warp_affine(frames, letterbox_matrix(frames), size=[INPUT_SIZE, INPUT_SIZE], fill_value=0,
                           interp_type=types.INTERP_LINEAR, inverse_map=False)
    detector = fn.transpose(fn.cast(boxed, dtype=types.FLOAT), perm=[0, 3, 1, 2])
    return fn.copy(frames, name="FRAMES"), fn.copy(detector, name="DETECTOR_INPUT")
