"""dfguard.faces.search: the fine tiles on every k-th sampled frame, windows around known faces in between."""

from __future__ import annotations

import numpy as np
import pytest
from photos import face_filling_the_frame, grace_hopper

from dfguard.faces.detect import Detection, in_process_detector
from dfguard.faces.search import FaceStream, find_faces, key_frames, search_streams
from dfguard.faces.settings import DetectorConfig, TrackConfig
from dfguard.faces.tiles import CONTEXT, ZOOMED_OUT, tile_windows, windows_around
from dfguard.faces.tracks import shot_starts
from dfguard.faces.weights import DETECTORS
from dfguard.train.scenes import make_scene, match, plan_scene

FULL_RANGE = DETECTORS["blazeface_full_range"]


def test_key_frames_are_each_shots_ends_and_every_kth_frame_of_it():
    starts = np.zeros(16, bool)
    starts[[0, 10]] = True
    assert np.flatnonzero(key_frames(starts, 4)).tolist() == [0, 4, 8, 9, 10, 14, 15]
    assert key_frames(starts, 1).all()
    assert key_frames(starts[:1], 4).tolist() == [True]


def detection(box: tuple[float, float, float, float]) -> Detection:
    return Detection(box, np.zeros((6, 2), np.float32), 0.9)


def still_frame() -> np.ndarray:
    """A frame with a layout (a flat one has none, so every frame of it would start a shot)."""
    return np.repeat(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None], 90, axis=0).repeat(3, axis=2)


def test_frames_between_key_frames_get_the_faces_of_the_key_frames_on_either_side():
    stream = FaceStream(DetectorConfig(search_every=3), TrackConfig(), 6)
    stream.add([still_frame()] * 6)  # one shot: key frames 0, 3 and 5 (its last)
    assert [f.key for f in stream.pending] == [True, False, False, True, False, True]
    found = {0: [detection((0, 0, 10, 10))], 3: [detection((5, 5, 15, 15)), detection((50, 50, 60, 60))], 5: []}
    for frame in stream.pending:
        frame.found, frame.first = found.get(frame.index), None if frame.key else []
    ready = {frame.index: boxes for frame, boxes in stream.second_round()}
    assert {k: len(b) for k, b in ready.items()} == {1: 3, 2: 3, 4: 2}
    np.testing.assert_array_equal(ready[1][0], [0, 0, 10, 10])
    np.testing.assert_array_equal(ready[4][1], [50, 50, 60, 60])


def test_a_frame_waits_for_the_next_key_frame_before_its_neighbours_are_known():
    stream = FaceStream(DetectorConfig(search_every=4), TrackConfig(), 8)
    stream.add([still_frame()] * 3)
    assert [f.key for f in stream.pending] == [True, False, None]  # the last frame read may end its shot
    for frame in stream.pending[:2]:
        frame.found, frame.first = ([], None) if frame.key else (None, [])
    assert stream.second_round() == []  # frame 1 needs key frame 4
    stream.link()
    assert [f.index for f, _, _ in stream.settled] == [0]


def test_a_window_around_a_small_face_is_centred_on_it_and_large_faces_need_none():
    small, twin = (900.0, 500.0, 960.0, 560.0), (902.0, 501.0, 962.0, 561.0)
    large = (100.0, 100.0, 500.0, 500.0)  # 400 px of a 1920 px frame: 40 input pixels of the whole frame
    windows = windows_around([small, twin, large], 1080, 1920, FULL_RANGE)
    assert len(windows) == 1
    (window,) = windows
    assert window.side == pytest.approx(CONTEXT * 60)
    assert window.x0 + window.side / 2 == pytest.approx(930) and window.y0 + window.side / 2 == pytest.approx(530)


def panning_video(rng: np.random.Generator, frames: int = 9, step: int = 45) -> tuple[list[np.ndarray],
                                                                                    list[np.ndarray]]:
    """A 1080p camera panning ``step`` px per sampled frame over a scene of two small faces (wholly inside every
    frame), and the faces' boxes in each frame."""
    width, height, pan = 1920, 1080, step * (frames - 1)
    for _ in range(100):
        plan = plan_scene(rng, width=width + pan, height=height, faces=2, min_face_px=50, max_face_px=90,
                          gray=False)
        boxes = plan.boxes
        if len(boxes) == 2 and (boxes[:, 0] > pan + 10).all() and (boxes[:, 2] < width - 10).all() and \
                (boxes[:, 1] > 10).all() and (boxes[:, 3] < height - 10).all():
            scene = plan.render()
            break
    else:
        raise AssertionError("no scene of two faces fits")
    images = [np.ascontiguousarray(scene.image[:, k * step:k * step + width]) for k in range(frames)]
    return images, [boxes - np.array([k * step, 0, k * step, 0], np.float32) for k in range(frames)]


class CountingRun:
    """The in-process full-range detector, counting the windows it was given."""

    def __init__(self) -> None:
        self.detector, self.windows = in_process_detector(FULL_RANGE), 0

    def __call__(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.windows += len(inputs)
        return self.detector(inputs)


@pytest.mark.slow  # two face searches of nine 1080p frames
def test_faces_moving_between_key_frames_are_found_in_every_frame_for_far_fewer_windows(rng):
    """Two faces of 50-90 px in 1080p, the camera moving 45 px per sampled frame (about two thirds of a face
    side, three faces' widths between key frames): every face is found in every frame, as by the fine tiles on
    every frame, with less than half their detector windows, and one counted track per face."""
    frames, truth = panning_video(rng)
    found, runs = {}, {}
    for every in (1, 4):
        runs[every] = CountingRun()
        found[every] = find_faces(frames, DetectorConfig(search_every=every), TrackConfig(), runs[every])
    for k, boxes in enumerate(truth):
        for every in (1, 4):
            assert match(boxes, found[every].boxes[found[every].frame == k]) == (2, 0), (every, k)
    tiles = len(tile_windows(1080, 1920, FULL_RANGE))
    assert runs[1].windows == 9 * tiles
    # key frames 0, 4 and 8 tiled; frames between: the whole frame and a window per face and key frame on
    # either side (one when the face moved little between them)
    assert 3 * tiles + 6 * (1 + 2) <= runs[4].windows <= 3 * tiles + 6 * (1 + 4) < runs[1].windows / 2
    assert found[4].track_counts.sum() == 2


@pytest.mark.slow
def test_a_face_that_appears_between_key_frames_is_found_from_the_key_frame_after_and_a_cut_is_searched(rng):
    """Frames 0-1 of a shot without people, frames 2-6 with them (key frames 0, 4, 6), then a cut to another
    scene: the faces are found in frames 2-3 too (from key frame 4's faces), and the new shot's small faces at
    once (its first frame is a key frame)."""
    frames, truth = panning_video(rng, frames=7, step=10)
    empty = np.full_like(frames[0], 90)
    other, other_truth = panning_video(rng, frames=3, step=10)
    video = [empty, empty, *frames[2:], *other]
    found = find_faces(video, DetectorConfig(search_every=4), TrackConfig(), CountingRun())
    assert found.frame_faces.tolist() == [0, 0, 2, 2, 2, 2, 2, 2, 2, 2]
    for k, boxes in [*enumerate(truth)][2:] + [(7 + j, b) for j, b in enumerate(other_truth)]:
        assert match(boxes, found.boxes[found.frame == k]) == (2, 0), k


def test_frames_the_whole_frame_searches_in_full_get_no_windows_around_faces(rng):
    """At 320×240 with faces from 48 px the plan is the whole frame and the zoomed-out window (for a face as
    tall as the frame): key frames (0, 4 and the last, 5) cost those two windows, every other frame one, as
    its face is neither too small nor too large for the whole frame."""
    scene = make_scene(rng, width=320, height=240, faces=1, min_face_px=50, max_face_px=60, gray=False)
    assert [w.level for w in tile_windows(240, 320, FULL_RANGE)] == [0, ZOOMED_OUT]
    run = CountingRun()
    found = find_faces([scene.image] * 6, DetectorConfig(search_every=4), TrackConfig(), run)
    assert run.windows == 3 * 2 + 3 and found.frame_faces.tolist() == [1] * 6


def test_a_face_as_large_as_the_frame_is_searched_zoomed_out_between_key_frames_too(rng):
    """A 224-px crop whose face fills it: the whole frame misses such a face, so every frame between key frames
    gets the zoomed-out window too, and the face is found in every frame."""
    photo = grace_hopper()
    face = find_faces([photo], DetectorConfig(), TrackConfig(), CountingRun()).detections[0]
    frame = face_filling_the_frame(photo, np.array(face.box), 0.9)
    run = CountingRun()
    found = find_faces([frame] * 6, DetectorConfig(search_every=4), TrackConfig(), run)
    assert run.windows == 6 * 2 and found.frame_faces.tolist() == [1] * 6 and found.track_counts.tolist() == [True]


@pytest.mark.slow  # three face searches of thirteen 1080p frames
def test_a_video_read_in_chunks_gives_the_faces_and_tracks_of_one_search(rng):
    """``FaceStream`` as ``deepfake_stream`` drives it: a panning shot, a cut, another shot, in chunks of 1, 5 and
    all frames. The faces, boxes and tracks equal one search of every frame, and after each chunk every frame up
    to the last key frame read has settled (later ones wait for the key frame after them)."""
    first, _ = panning_video(rng, frames=7, step=30)
    second, _ = panning_video(rng, frames=6, step=30)
    mirrored = [np.ascontiguousarray(frame[:, ::-1]) for frame in second]  # a layout unlike the first shot's
    video, config = [*first, *mirrored], DetectorConfig(search_every=4)
    whole = find_faces(video, config, TrackConfig(), CountingRun())
    assert whole.track_counts.sum() == 4 and set(whole.frame_faces.tolist()) == {2}  # two people per shot
    starts = shot_starts(video, TrackConfig().min_shot_correlation)
    assert np.flatnonzero(starts).tolist() == [0, 7]
    keys = np.flatnonzero(key_frames(starts, 4))
    for chunk in (1, 5, 13):
        stream, run, parts = FaceStream(config, TrackConfig(), len(video)), CountingRun(), []
        for start in range(0, len(video), chunk):
            stream.add(video[start:start + chunk])
            search_streams([stream], run)
            parts.append(stream.take())
            read = min(start + chunk, len(video))
            last_key = np.max(keys[keys < read - 1], initial=-1) if read < len(video) else len(video) - 1
            assert parts[-1].first + len(parts[-1].images) >= last_key + 1, (chunk, start)
        assert stream.done
        found = [p.found for p in parts]
        np.testing.assert_array_equal(np.concatenate([f.frame for f in found]), whole.frame)
        np.testing.assert_array_equal(np.concatenate([f.track for f in found]), whole.track)
        np.testing.assert_allclose(np.concatenate([f.boxes for f in found]), whole.boxes, atol=1e-3)
        np.testing.assert_array_equal(np.concatenate([f.frame_faces for f in found]), whole.frame_faces)
        np.testing.assert_array_equal(found[-1].track_counts, whole.track_counts)
