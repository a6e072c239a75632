"""Shared test set-up.

Without an NVIDIA GPU, Numba's CUDA simulator stands in for the device so the ``numba-cuda`` kernel runs in CI.
It must be chosen before ``numba.cuda`` is first imported, hence here, at collection time.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
import pytest

HAS_NVIDIA_DEVICE = Path("/dev/nvidiactl").exists()
if not HAS_NVIDIA_DEVICE:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fresh seed each run (printed, so a failure can be replayed with DFGUARD_TEST_SEED)."""
    seed = int(os.environ.get("DFGUARD_TEST_SEED", secrets.randbits(32)))
    print(f"random seed {seed} (replay with DFGUARD_TEST_SEED={seed})")
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """Prepared synthetic crops (see training_data.py), built once per test session."""
    from training_data import build_prepared

    return build_prepared(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def trained(prepared, tmp_path_factory) -> Path:
    """A run folder of the tiny preset trained on two families, built once per test session."""
    from training_data import build_trained

    return build_trained(prepared, tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def repository(trained, tmp_path_factory) -> Path:
    """The model repository with the trained tiny model exported into it."""
    from training_data import build_repository

    return build_repository(trained, tmp_path_factory.mktemp("repository"))


@pytest.fixture(scope="session")
def served(repository):
    """The CPU ensemble in a real tritonserver on free ports, shared by the serving and client tests."""
    from dfguard.serving.server import TritonServer

    with TritonServer(repository) as server:
        yield server
