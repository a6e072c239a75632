"""Which install extra provides which import: what ``dfguard`` tells a user whose install lacks a part.

``pip install deepfake-guard`` is the client (gRPC, batch scoring, ``dfguard score --url``); the extras add the
rest (``setup.py`` lists their requirements; a test checks that every module here comes from its extra).
"""

from __future__ import annotations

# top-level import name → the extra whose requirements bring it
MODULE_EXTRAS = {
    "av": "serve", "cv2": "serve", "numba": "serve", "onnxruntime": "serve", "PIL": "serve", "pytriton": "serve",
    "torch": "train", "torchvision": "train", "timm": "train", "onnx": "train", "onnxscript": "train",
    "mediapipe": "train", "sklearn": "train", "skimage": "train", "tensorboard": "train", "scipy": "train",
    "matplotlib": "plots", "flask": "review", "werkzeug": "review",
    "cupy": "gpu", "nvidia": "gpu", "tensorrt": "gpu",
}


def missing_extra_message(error: ModuleNotFoundError, what: str) -> str | None:
    """"<what> needs <module> from the <extra> extra: pip install ..." for a module an extra provides, else None."""
    module = (error.name or "").split(".")[0]
    extra = MODULE_EXTRAS.get(module)
    if extra is None or is_installed(module):  # installed: the failure is elsewhere (a submodule), not the extra
        return None
    return f"{what} needs {module}, which the {extra} extra installs: pip install 'deepfake-guard[{extra}]'"


def is_installed(module: str) -> bool:
    """Whether the top-level ``module`` can be imported here (False also where it was made unimportable)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ValueError, ImportError):  # sys.modules[module] is None, or a broken package
        return False
