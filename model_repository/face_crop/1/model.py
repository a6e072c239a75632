"""face_crop, both variants: face and part crops (crop_step); the logic is dfguard.serving.steps.FaceCrop."""

import pathlib
import runpy

runpy.run_path(str(pathlib.Path(__file__).resolve().parents[2] / "_dfguard_env.py"))

from dfguard.serving.steps import FaceCrop as TritonPythonModel  # noqa: E402, F401
