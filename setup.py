"""deepfake-guard: one distribution, one import root (``dfguard``), the top-level folders mapped into it."""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent

# The repository's top-level folders kernels/, train/ and client/ are sub-packages of ``dfguard``: nothing
# installs a bare ``train`` or ``client``.
PACKAGE_DIR = {
    "dfguard": "dfguard",
    "dfguard.kernels": "kernels",
    "dfguard.train": "train",
    "dfguard.client": "client",
}

INSTALL_REQUIRES = [
    # < 2: the Triton 2.51 Python backend (nvidia-pytriton 0.7.0) silently returns empty output tensors with
    # numpy 2, and mediapipe 0.10.21 is built against numpy 1.
    "numpy>=1.24,<2",
    "scipy>=1.10",
    "numba>=0.59",
    "numba-cuda>=0.20",  # numba.cuda: the CUDA kernel, and its simulator in CI
    "pyyaml>=6.0",
    "tqdm>=4.60",
    "matplotlib>=3.7",
    "av>=12",
    # == 0.10.21: the last release whose wheel ships BlazeFace's .tflite weights and mp.solutions, for numpy 1.
    "mediapipe==0.10.21",
    # mediapipe's OpenCV; 4.11+ wheels require numpy >= 2.
    "opencv-contrib-python<4.11",
    "torch>=2.2",
    "torchvision>=0.17",
    "timm>=1.0",
    "onnx>=1.15",
    "onnxscript>=0.3",  # torch.onnx.export(dynamo=True), the exporter that replaces the deprecated TorchScript one
    "onnxruntime>=1.17",
    "scikit-learn>=1.3",
    "scikit-image>=0.22",  # real photos that ship in its wheel: synthetic videos and tests (astronaut, coffee)
    "tensorboard>=2.14",
    # == 2.51.0: the same release as the tritonserver inside nvidia-pytriton 0.7.0; its wheel carries the real
    # perf_analyzer binary.
    "tritonclient[grpc]==2.51.0",
]

EXTRAS_REQUIRE = {
    # == 0.7.0: ships a working tritonserver 2.51.0 with the Python backend (runs on a CPU-only machine).
    "serve": ["nvidia-pytriton==0.7.0"],
    "gpu": ["cupy-cuda12x>=13", "nvidia-dali-cuda120>=1.47"],  # DALI >= 1.47 for video frame selection
    # perf_analyzer links libcudart.so.12 even on a CPU machine.
    "bench": ["nvidia-cuda-runtime-cu12"],
}
EXTRAS_REQUIRE["dev"] = [
    "pytest>=8",
    "pytest-timeout>=2.3",
    "ruff>=0.6",
    "cupy-cuda12x>=13",  # so the GPU tests exercise the "CuPy installed, no GPU" path instead of ImportError
    "nvidia-dali-cuda120>=1.47",  # the GPU variant's DALI pipeline, run on the CPU with a VP9 video in the tests
    *EXTRAS_REQUIRE["serve"],
    *EXTRAS_REQUIRE["bench"],
]

setup(
    name="deepfake-guard",
    version="0.1.0",
    description="Deepfake video detection served as an NVIDIA Triton ensemble",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=[*PACKAGE_DIR, "dfguard.faces", "dfguard.inference", "dfguard.serving"],
    package_dir=PACKAGE_DIR,
    package_data={"dfguard.kernels": ["*.cu"], "dfguard.train": ["configs/*.yaml"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["dfguard = dfguard.cli:main"]},
)
