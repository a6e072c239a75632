"""face_detector, CPU variant: BlazeFace in ONNX Runtime; the logic is dfguard.serving.steps.OnnxModel."""

import pathlib
import runpy

runpy.run_path(str(pathlib.Path(__file__).resolve().parents[2] / "_dfguard_env.py"))

from dfguard.serving.steps import OnnxModel as TritonPythonModel  # noqa: E402, F401
