"""cluster_classifier, both variants: scores and verdict; the logic is dfguard.serving.steps.ClusterClassifier."""

import pathlib
import runpy

runpy.run_path(str(pathlib.Path(__file__).resolve().parents[2] / "_dfguard_env.py"))

from dfguard.serving.steps import ClusterClassifier as TritonPythonModel  # noqa: E402, F401
