"""video_decode, CPU variant: decode with PyAV; the logic is dfguard.serving.steps.VideoDecode."""

import pathlib
import runpy

runpy.run_path(str(pathlib.Path(__file__).resolve().parents[2] / "_dfguard_env.py"))

from dfguard.serving.steps import VideoDecode as TritonPythonModel  # noqa: E402, F401
