"""image_decode, both variants: one encoded image → a one-frame video; the logic is
dfguard.serving.steps.ImageDecode."""

import pathlib
import runpy

runpy.run_path(str(pathlib.Path(__file__).resolve().parents[2] / "_dfguard_env.py"))

from dfguard.serving.steps import ImageDecode as TritonPythonModel  # noqa: E402, F401
