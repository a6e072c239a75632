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

# The core install is the client: the gRPC client, batch scoring and ``dfguard score --url``. Nothing heavy.
INSTALL_REQUIRES = [
    # < 2: the Triton 2.51 Python backend (nvidia-pytriton 0.7.0) silently returns empty output tensors with
    # numpy 2, and mediapipe 0.10.21 is built against numpy 1.
    "numpy>=1.24,<2",
    "pyyaml>=6.0",
    "tqdm>=4.60",
    # == 2.51.0: the same release as the tritonserver inside nvidia-pytriton 0.7.0; its wheel carries the real
    # perf_analyzer binary.
    "tritonclient[grpc]==2.51.0",
]

# Each extra is what one part needs; dfguard/extras.py says which extra a missing import comes from.
EXTRAS_REQUIRE = {
    "plots": ["matplotlib>=3.7"],  # score timelines, histograms, ROC, DCT maps, face boxes
    # dfguard review: the moderators' page (server-rendered HTML), its pictures and the frames it decodes
    "review": ["flask>=3.0", "matplotlib>=3.7", "av>=12", "pillow>=9"],
    # the Triton steps of the CPU ensemble, and tritonserver itself
    "serve": [
        "av>=12",
        "numba>=0.59",
        # mediapipe's OpenCV; 4.11+ wheels require numpy >= 2.
        "opencv-contrib-python<4.11",
        "onnxruntime>=1.17",
        "pillow>=9",
        # == 0.7.0: ships a working tritonserver 2.51.0 with the Python backend (runs on a CPU-only machine).
        "nvidia-pytriton==0.7.0",
    ],
    # training, evaluation, export, in-process scoring (dfguard score --local), synthetic data, the demo
    "train": [
        "torch>=2.2",
        "torchvision>=0.17",
        "timm>=1.0",
        "onnx>=1.15",
        "onnxscript>=0.3",  # torch.onnx.export(dynamo=True), the exporter that replaces the TorchScript one
        # == 0.10.21: the last release whose wheel ships BlazeFace's .tflite weights and mp.solutions, for numpy 1.
        "mediapipe==0.10.21",
        "scipy>=1.10",
        "scikit-learn>=1.3",
        "scikit-image>=0.22",  # real photos that ship in its wheel: synthetic videos and tests (astronaut, coffee)
        "tensorboard>=2.14",
    ],
    "gpu": [
        "cupy-cuda12x>=13",
        "numba-cuda>=0.20",  # numba.cuda: the CUDA kernel, and its simulator in CI
        "nvidia-dali-cuda120>=1.47",  # DALI >= 1.47 for video frame selection
    ],
    # perf_analyzer links libcudart.so.12 even on a CPU machine.
    "bench": ["nvidia-cuda-runtime-cu12"],
}
# export checks its graphs in ONNX Runtime, --local decodes video, eval draws its ROC
EXTRAS_REQUIRE["train"] += EXTRAS_REQUIRE["serve"] + EXTRAS_REQUIRE["plots"]
# what make test installs: everything (the GPU libraries too, so their "installed, no GPU" paths are tested)
EXTRAS_REQUIRE["dev"] = [
    "pytest>=8",
    "pytest-timeout>=2.3",
    "ruff>=0.6",
    "packaging>=23",  # tests/test_architecture.py resolves the extras from the installed metadata
    "cryptography>=42",  # tests/test_serving.py makes a self-signed certificate to serve gRPC over TLS
    "kubernetes-validate>=1.31",  # tests/test_deploy.py validates the rendered manifests offline
    "selenium>=4.20",  # tests/test_review.py drives Debian's chromium (chromium-driver) through the review page
    *EXTRAS_REQUIRE["train"],
    *EXTRAS_REQUIRE["review"],
    *EXTRAS_REQUIRE["gpu"],
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
