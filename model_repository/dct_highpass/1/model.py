"""dct_highpass: Numba kernel on KIND_CPU, CuPy kernel on KIND_GPU; the logic is dfguard.serving.steps.DctHighpass."""

import pathlib
import runpy

runpy.run_path(str(pathlib.Path(__file__).resolve().parents[2] / "_dfguard_env.py"))

from dfguard.serving.steps import DctHighpass as TritonPythonModel  # noqa: E402, F401
