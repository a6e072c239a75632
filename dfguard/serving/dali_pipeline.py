"""``video_decode`` of the GPU variant: the DALI pipeline's graph. ``model_repository/video_decode/1/dali.py`` wraps it
in the one ``@autoserialize`` pipeline, which Triton's DALI backend serializes when it loads the model.

The pipeline takes what ``video_probe`` decided (``FRAME_INDEX``) and decodes exactly those frames, with NVDEC on
the GPU (``device="mixed"``) or FFmpeg on the CPU (the same graph; DALI's CPU decoder reads VP8/VP9/MJPEG only,
which is how the tests run it). Its output is the CPU variant's: ``FRAMES [F, H, W, 3]`` uint8. The detector's
windows are not cut here: their number depends on the frame size (one for a 360p frame, about 150 for 4K), which
a DALI graph cannot branch on, so ``face_finder`` cuts them on the CPU in both variants.
"""

from __future__ import annotations

from typing import Any

DECODER_DEVICES = ("mixed", "cpu")


def video_decode_graph(decoder_device: str) -> Any:
    """The pipeline's body: ``VIDEO`` and ``FRAME_INDEX`` in, ``FRAMES`` out."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    if decoder_device not in DECODER_DEVICES:
        raise ValueError(f"decoder_device must be one of {DECODER_DEVICES}, got {decoder_device!r}")
    video = fn.external_source(name="VIDEO", dtype=types.UINT8, ndim=1, device="cpu")
    index = fn.external_source(name="FRAME_INDEX", dtype=types.INT32, ndim=1, device="cpu")
    frames = fn.decoders.video(video, frames=index, device=decoder_device, pad_mode="none")
    return fn.copy(frames, name="FRAMES")
