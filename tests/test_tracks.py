"""dfguard.faces.tracks: the faces of a video linked into one track per person per shot."""

from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np
import pytest
from photos import astronaut, grace_hopper

from dfguard.faces.detect import Detection
from dfguard.faces.tiles import detect_faces_tiled
from dfguard.faces.tracks import SHOT_LAYOUT, Track, TrackConfig, cap_faces, link_tracks, shot_starts, thumbnail
from dfguard.faces.weights import DETECTORS
from dfguard.train.scenes import plan_scene

FULL_RANGE = DETECTORS["blazeface_full_range"]


PAN = 80  # the camera's travel, pixels


def two_people(rng: np.random.Generator, width: int = 1280, height: int = 720) -> np.ndarray:
    """A colour scene with two faces of 100-250 px, ``PAN`` pixels larger than the frame each way, both faces
    inside every frame a camera panning over it can film."""
    for _ in range(200):
        scene = plan_scene(rng, width=width + PAN, height=height + PAN, faces=2, gray=False)  # rendered if kept
        sides = scene.boxes[:, 3] - scene.boxes[:, 1]
        inside = ((scene.boxes[:, 0] > PAN) & (scene.boxes[:, 2] < width) & (scene.boxes[:, 1] > PAN)
                  & (scene.boxes[:, 3] < height))
        if len(scene.boxes) == 2 and (sides > 100).all() and (sides < 250).all() and inside.all():
            return scene.render().image
    raise AssertionError("no two-person scene drawn")


def filmed(scene: np.ndarray, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The scene as a camera films it, sampled seconds apart: a pan over ``PAN`` pixels, an exposure drift."""
    height, width = scene.shape[0] - PAN, scene.shape[1] - PAN
    out = []
    for _ in range(frames):
        x, y = rng.integers(0, PAN + 1, 2)
        out.append(np.clip(scene[y:y + height, x:x + width] * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8))
    return out


@pytest.mark.slow  # detection on 16 HD frames
def test_two_people_filmed_over_a_cut_give_one_track_each_per_shot(rng):
    first = filmed(two_people(rng), 8, rng)
    layout = lambda frame: thumbnail(frame, (0, 0, frame.shape[1], frame.shape[0]), SHOT_LAYOUT)  # noqa: E731
    second = first
    while float(layout(second[0]) @ layout(first[-1])) > 0.3:  # a cut to another scene, not to the same backdrop
        second = filmed(two_people(rng), 8, rng)
    frames = first + second
    detections = detect_faces_tiled(frames, FULL_RANGE)
    capped, tracks = link_tracks(frames, detections)
    assert sum(len(t.frames) for t in tracks) == sum(len(d) for d in capped)  # every face in one track
    long = [t for t in tracks if len(t.frames) >= 6]
    assert len(long) == 4, [t.frames for t in tracks]
    for track in long:  # a track never crosses the cut, and holds at most one face per frame
        assert (max(track.frames) < 8 or min(track.frames) >= 8) and len(set(track.frames)) == len(track.frames)
    assert shot_starts(frames, TrackConfig().min_shot_correlation).nonzero()[0].tolist() == [0, 8]


def tilting_head(photo: np.ndarray, angles: list[float]) -> list[np.ndarray]:
    """The photo once per angle, its face (and only its face: the scene stays, no cut) tilted by that many
    degrees, as a head tilts while its person talks."""
    (face, *_), = detect_faces_tiled([photo], FULL_RANGE)
    box = np.array(face.box)
    centre, side = (box[:2] + box[2:]) / 2, max(box[2] - box[0], box[3] - box[1])
    mask = np.zeros(photo.shape[:2], np.float32)
    cv2.circle(mask, (int(centre[0]), int(centre[1])), int(0.75 * side), 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), side / 10)[..., None]
    frames = []
    for angle in angles:
        tilted = cv2.warpAffine(photo, cv2.getRotationMatrix2D(tuple(centre), angle, 1.0), photo.shape[1::-1],
                                borderMode=cv2.BORDER_REPLICATE)
        frames.append((mask * tilted + (1 - mask) * photo).astype(np.uint8))
    return frames


@pytest.mark.parametrize("photo", [grace_hopper, astronaut])
def test_one_person_tilting_their_head_is_one_track(photo):
    """A talking head tilting 30° each way between sampled frames: its grey thumbnails correlate about 0.3,
    lower than faces of two different people often do, so appearance must not split the person (a veto at 0.4
    gave 2-3 tracks of one person)."""
    frames = tilting_head(photo(), [0, 30, 0, -30, 0, 30, 0, -30])
    detections = detect_faces_tiled(frames, FULL_RANGE)
    assert [len(found) for found in detections] == [1] * 8
    looks = [thumbnail(frame, found[0].box) for frame, found in zip(frames, detections, strict=True)]
    assert min(float(a @ b) for a, b in pairwise(looks)) < 0.4
    _, tracks = link_tracks(frames, detections)
    assert [t.frames for t in tracks] == [tuple(range(8))]


def detection(x: float, y: float, side: float) -> Detection:
    return Detection((x, y, x + side, y + side), np.zeros((6, 2), np.float32), 0.9)


def test_a_crowd_is_capped_to_the_largest_faces_not_refused(rng):
    crowd = [detection(40 * (k % 10), 40 * (k // 10), 10 + k) for k in range(30)]
    capped = cap_faces(crowd, 8)
    assert [d.box[2] - d.box[0] for d in capped] == [39 - k for k in range(8)]
    frames = [rng.integers(0, 256, (200, 400, 3), dtype=np.uint8)]
    kept, tracks = link_tracks(frames, [crowd])
    assert len(kept[0]) == 8 and len(tracks) == 8


def test_a_face_too_far_or_too_different_in_size_starts_a_new_track():
    frame = np.full((400, 800, 3), 120, np.uint8)
    frame[100:200, 100:200] = np.arange(100, dtype=np.uint8)[None, :, None]  # some texture for the thumbnails
    moved = np.roll(frame, 500, axis=1)
    _, tracks = link_tracks([frame, moved], [[detection(100, 100, 100)], [detection(600, 100, 100)]])
    assert [t.frames for t in tracks] == [(0,), (1,)]
    _, tracks = link_tracks([frame, frame], [[detection(100, 100, 100)], [detection(100, 100, 100)]])
    assert [t.frames for t in tracks] == [(0, 1)]
    _, tracks = link_tracks([frame, frame], [[detection(100, 100, 100)], [detection(100, 100, 220)]])
    assert len(tracks) == 2


def test_whether_a_track_counts():
    config = TrackConfig(min_track_faces=3)
    assert Track(0, (0, 1, 2), (0, 0, 0)).counts(config, 32)
    assert not Track(0, (5,), (1,)).counts(config, 32)  # seen once in 32 frames: maybe a false detection
    assert Track(0, (0,), (0,)).counts(config, 1)  # an image: its one face counts
    with pytest.raises(ValueError):
        TrackConfig(max_faces=0)
