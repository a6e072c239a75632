"""dfguard.faces.tiles: every face of at least min_face_px, in frames from 360p to 4K, against mediapipe."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import mediapipe_faces
from photos import astronaut, face_filling_the_frame, grace_hopper

from dfguard.faces.tiles import MIN_FACE_PX, ZOOMED_OUT, detect_faces_tiled, tile_windows
from dfguard.faces.weights import DETECTORS
from dfguard.train.scenes import BACKGROUNDS, RESOLUTIONS, background, clip_boxes, make_scene, match

FULL_RANGE = DETECTORS["blazeface_full_range"]


@pytest.mark.parametrize(("width", "height"), RESOLUTIONS)
def test_every_face_size_fits_wholly_in_a_window_that_sees_it_large_enough(width, height, rng):
    """The coverage promise of the plan, for random squares from min_face_px to half the frame."""
    windows = tile_windows(height, width, FULL_RANGE)
    for _ in range(300):
        side = np.exp(rng.uniform(np.log(MIN_FACE_PX), np.log(height / 2)))
        x, y = rng.uniform(0, width - side), rng.uniform(0, height - side)
        assert any(w.x0 - 1e-6 <= x and x + side <= w.x0 + w.side + 1e-6 and w.y0 - 1e-6 <= y
                   and y + side <= w.y0 + w.side + 1e-6 and side * FULL_RANGE.input_size / w.side
                   >= FULL_RANGE.smallest_face for w in windows), (side, x, y)


def test_a_selfie_frame_needs_no_tiles():
    assert [w.level for w in tile_windows(360, 640, FULL_RANGE, min_face_px=120)] == [0, ZOOMED_OUT]
    assert [w.level for w in tile_windows(300, 640, FULL_RANGE, min_face_px=120)] == [0]  # a face 300 px tall is
    # found in the whole frame: it fills less than half of it


@pytest.mark.parametrize("photo", [grace_hopper, astronaut])
def test_a_face_that_fills_the_frame_is_found(photo):
    """Frames where the face box is 0.6 to 1.1 of the frame's side: mediapipe's short-range detector (made for
    selfies) finds every face, ours finds the same face, where mediapipe's full range misses some (the full-range
    model finds faces only up to about half its input: the whole-frame window zooms out for them)."""
    image = photo()
    (box, _, _), *_ = mediapipe_faces(image)
    missed_by_full_range = 0
    for fraction in (0.6, 0.7, 0.8, 0.9, 1.0, 1.1):
        frame = face_filling_the_frame(image, box, fraction)
        selfie = clip_boxes([found for found, _, _ in mediapipe_faces(frame)], 224, 224)
        assert len(selfie) == 1, fraction
        assert match(selfie, found_boxes(frame)) == (1, 0), fraction
        missed_by_full_range += len(mediapipe_boxes(frame)) == 0
    assert missed_by_full_range >= 1


def mediapipe_boxes(image: np.ndarray) -> np.ndarray:
    return clip_boxes([box for box, _, _ in mediapipe_faces(image, FULL_RANGE)], *image.shape[:2])


def found_boxes(image: np.ndarray) -> np.ndarray:
    return clip_boxes([d.box for d in detect_faces_tiled([image], FULL_RANGE)[0]], *image.shape[:2])


@pytest.mark.slow  # dozens of scenes up to 4K
def test_recall_on_scenes_like_real_uploads(rng):
    """1-3 people from real photos, 48 px up to half the frame, 360p to 4K, a quarter grayscale, faces partly
    out of frame: at least 95 % found, where mediapipe's own full-range detector finds far fewer."""
    faces = ours = theirs = 0
    for scene in (make_scene(rng) for _ in range(48)):
        faces += len(scene.boxes)
        ours += match(scene.boxes, found_boxes(scene.image))[0]
        theirs += match(scene.boxes, mediapipe_boxes(scene.image))[0]
    print(f"faces found: ours {ours}/{faces}, mediapipe full range {theirs}/{faces}")
    assert ours >= 0.95 * faces and ours > theirs


@pytest.mark.slow
def test_no_more_false_faces_than_mediapipe_on_frames_without_people(rng):
    frames = [background(name, width, height, rng) for width, height in RESOLUTIONS for name in BACKGROUNDS]
    frames += [rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), np.full((2160, 3840, 3), 128, np.uint8)]
    ours = sum(len(found_boxes(frame)) for frame in frames)
    theirs = sum(len(mediapipe_boxes(frame)) for frame in frames)
    print(f"false faces on {len(frames)} frames without people: ours {ours}, mediapipe {theirs}")
    assert ours <= theirs


def test_a_face_across_tile_borders_is_one_box(rng):
    """A 4K frame with one 80 px face straddling the borders of the finest windows (found there and in the
    overlapping windows of two levels): one box on the face, nothing else."""
    windows = [w for w in tile_windows(2160, 3840, FULL_RANGE) if w.level == max(v.level for v in tile_windows(
        2160, 3840, FULL_RANGE))]
    border = windows[1].x0  # the second window's left edge lies inside the first window
    for _ in range(50):
        scene = make_scene(rng, width=3840, height=2160, faces=1, gray=False)
        if len(scene.boxes) == 1 and 60 < scene.boxes[0, 3] - scene.boxes[0, 1] < 200:
            break
    box = scene.boxes[0]
    shift = int(border - (box[0] + box[2]) / 2)  # move the face so its centre sits on the border
    image = np.roll(scene.image, shift, axis=1)
    truth = box + np.array([shift, 0, shift, 0], np.float32)
    found = found_boxes(image)
    assert len(found) == 1 and match(truth[None], found) == (1, 0)
