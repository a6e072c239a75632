"""deepfake_stream, both variants: a video answered chunk by chunk (dfguard.serving.steps.DeepfakeStream)."""

import pathlib
import runpy

runpy.run_path(str(pathlib.Path(__file__).resolve().parents[2] / "_dfguard_env.py"))

from dfguard.serving.steps import DeepfakeStream as TritonPythonModel  # noqa: E402, F401
