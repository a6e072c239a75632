"""face_finder, both variants: every face, its track and its crops; the logic is dfguard.serving.steps.FaceFinder."""

import pathlib
import runpy

runpy.run_path(str(pathlib.Path(__file__).resolve().parents[2] / "_dfguard_env.py"))

from dfguard.serving.steps import FaceFinder as TritonPythonModel  # noqa: E402, F401
