"""deepfake-guard: deepfake video detection (dual-stream RGB + DCT frequency network, CDNet cluster decision)
served as an NVIDIA Triton ensemble.

Sub-packages: ``dfguard.kernels`` (blockwise 8×8 DCT), ``dfguard.faces`` (detection, tiles, tracks, crops),
``dfguard.inference`` (what a trained model is: config, network, checkpoint, serving spec), ``dfguard.serving``
(the Triton steps, starting tritonserver), ``dfguard.client`` (gRPC client, batch scoring), ``dfguard.train``
(data, training, evaluation, export). docs/architecture.md has the layers.
"""

from pathlib import Path

__version__ = "0.1.0"

# setup.py maps the checkout's kernels/, train/ and client/ folders to dfguard.kernels, .train and .client. Run
# from a checkout without an install (``PYTHONPATH=.``, as on a bare GPU machine), imports find them beside this
# folder; installed, this folder has no such neighbours and nothing changes.
_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "setup.py").is_file() and (_CHECKOUT / "kernels" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))
