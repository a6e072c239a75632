"""video_probe, both variants: count the frames, choose the ones to decode; the logic is
dfguard.serving.steps.VideoProbe."""

import pathlib
import runpy

runpy.run_path(str(pathlib.Path(__file__).resolve().parents[2] / "_dfguard_env.py"))

from dfguard.serving.steps import VideoProbe as TritonPythonModel  # noqa: E402, F401
