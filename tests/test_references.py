"""benchmarks.references: the peers' front-ends the face benchmarks compare ours with, mediapipe on tiles above all
(what a careful engineer writes with mediapipe alone): tiles that cover every pixel, one box per face."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO

pytestmark = pytest.mark.usefixtures("benchmarks_importable")


@pytest.fixture
def benchmarks_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


@pytest.mark.parametrize(("length", "tile"), [(1920, 576), (1080, 576), (576, 576), (300, 576), (577, 576)])
def test_tiles_cover_every_pixel_and_overlap_by_a_quarter_at_most(length, tile):
    from benchmarks.references import tile_origins

    starts = tile_origins(length, tile, 0.25)
    covered = np.zeros(length, bool)
    for start in starts:
        covered[start:start + tile] = True
    assert covered.all() and starts == sorted(set(starts)) and starts[0] == 0
    assert all(start + tile <= max(length, tile) for start in starts)


def test_overlapping_boxes_keep_the_best_scored_one():
    from benchmarks.references import non_maximum_suppression

    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], np.float32)
    kept = non_maximum_suppression(boxes, np.array([0.6, 0.9, 0.7, 0.5], np.float32), 0.3)
    assert kept.tolist() == [1, 2]


def test_mediapipe_on_tiles_finds_the_small_faces_of_an_hd_scene_that_the_whole_frame_misses():
    from benchmarks.references import mediapipe_detector, mediapipe_tiled
    from dfguard.train.scenes import make_scene, match

    rng = np.random.default_rng(5)
    scenes = [make_scene(rng, width=1920, height=1080, faces=3, min_face_px=48, max_face_px=70, gray=False)
              for _ in range(3)]
    tiled, whole = mediapipe_tiled(), mediapipe_detector(1)
    found = {name: sum(match(s.boxes, run(s.image))[0] for s in scenes) for name, run in (("tiled", tiled),
                                                                                           ("whole", whole))}
    faces = sum(len(s.boxes) for s in scenes)
    assert found["tiled"] >= faces - 1 and found["tiled"] > found["whole"], (found, faces)
