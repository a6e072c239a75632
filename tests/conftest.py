"""Shared test set-up.

Without an NVIDIA GPU, Numba's CUDA simulator stands in for the device so the ``numba-cuda`` kernel runs in CI.
It must be chosen before ``numba.cuda`` is first imported, hence here, at collection time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from helpers import SEED

if TYPE_CHECKING:
    from dfguard.train.scenes import PeopleVideo

HAS_NVIDIA_DEVICE = Path("/dev/nvidiactl").exists()
if not HAS_NVIDIA_DEVICE:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")




@pytest.fixture
def rng() -> np.random.Generator:
    """A generator seeded with the session's seed (printed, so a failure names the seed to replay)."""
    print(f"test seed {SEED} (DFGUARD_TEST_SEED={SEED} replays it)")
    return np.random.default_rng(SEED)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """Prepared synthetic crops (see training_data.py), built once per test session."""
    from training_data import build_prepared

    return build_prepared(tmp_path_factory.mktemp("synthetic"), seed=SEED)


@pytest.fixture(scope="session")
def trained(prepared, tmp_path_factory) -> Path:
    """A run folder of the tiny preset trained on two families, built once per test session."""
    from training_data import build_trained

    return build_trained(prepared, tmp_path_factory.mktemp("run"), seed=SEED)


@pytest.fixture(scope="session")
def repository(trained, tmp_path_factory) -> Path:
    """The model repository with the trained tiny model exported into it."""
    from training_data import build_repository

    return build_repository(trained, tmp_path_factory.mktemp("repository"))


@pytest.fixture(scope="session")
def tritonserver():
    """``TritonServer``, for a test that starts servers of its own: asking for it makes the test an integration
    test (``pytest_collection_modifyitems``)."""
    from dfguard.serving.server import TritonServer

    return TritonServer


@pytest.fixture(scope="session")
def served(repository, tritonserver):
    """The CPU ensemble in a real tritonserver on free ports, shared by the serving and client tests."""
    with tritonserver(repository) as server:
        yield server


@pytest.fixture(scope="session")
def two_people(tmp_path_factory) -> dict[str, PeopleVideo]:
    """The same 640×360 scene of two people, once with one of them forged (a family the tiny model saw). Faces
    of 90-110 px: the tiny model was trained on faces its 128 px crops hardly resample, and it reads the
    resampling of smaller (upscaled) faces as a forgery and misses the artifacts of larger (downscaled) ones."""
    from training_data import SEEN

    from dfguard.train.scenes import make_people_video
    from dfguard.train.synthetic import VideoSpec

    folder = tmp_path_factory.mktemp("people")
    spec = VideoSpec(width=640, height=360, frames=40, fps=25, keyframe_interval=25)
    return {name: make_people_video(folder / f"{name}.mp4", spec, np.random.default_rng(SEED), people=2,
                                    family=family, min_face_px=90, max_face_px=110)
            for name, family in (("forged", SEEN[0]), ("real", None))}


# Markers by what a test needs, read from the fixtures it uses (directly or through other fixtures): a trained
# model or prepared data is slow (built once per session, minutes); a real tritonserver (``served``, or
# ``tritonserver`` to start one) is an integration test. `make test-fast` runs the rest
# (`-m "not slow and not integration"`).
SLOW_FIXTURES = {"prepared", "trained", "repository"}
SERVER_FIXTURES = {"served", "tritonserver"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each collected test ``slow`` and/or ``integration`` from its fixtures."""
    for item in items:
        used = set(item.fixturenames)
        if SLOW_FIXTURES & used:
            item.add_marker(pytest.mark.slow)
        if SERVER_FIXTURES & used:
            item.add_marker(pytest.mark.integration)
