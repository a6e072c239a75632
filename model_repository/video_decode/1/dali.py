"""video_decode, GPU variant: the DALI pipeline, serialized by Triton's DALI backend when it loads the model.

The graph is ``dfguard.serving.dali_pipeline.video_decode_graph``; ``batch_size`` is the config's
``max_batch_size``. ``decoder_device="cpu"`` with ``device_id=None`` runs the same definition without a GPU
(VP8/VP9/MJPEG only), which is how the tests check it.
"""

from nvidia.dali import pipeline_def
from nvidia.dali.plugin.triton import autoserialize

from dfguard.serving.dali_pipeline import video_decode_graph


@autoserialize
@pipeline_def(batch_size=8, num_threads=4, device_id=0)
def video_decode(decoder_device="mixed"):
    """``VIDEO``, ``FRAME_INDEX`` → ``FRAMES`` (NVDEC by default)."""
    return video_decode_graph(decoder_device)
