"""deepfake-guard: deepfake video detection (dual-stream RGB + DCT frequency network, CDNet cluster decision)
served as an NVIDIA Triton ensemble.

Sub-packages: ``dfguard.kernels`` (blockwise 8×8 DCT), ``dfguard.train`` (data, models, training, export),
``dfguard.client`` (gRPC client, batch scoring).
"""

__version__ = "0.1.0"
