"""dfguard.scoring: one face per frame and many faces per frame follow one rule."""

from __future__ import annotations

import numpy as np
import pytest

from dfguard.faces.settings import TrackConfig
from dfguard.scoring import VerdictThresholds, VideoScorer, aggregate_faces


def test_one_face_per_frame_in_one_track_is_the_mean_over_frames(rng):
    scorer = VideoScorer("logit", np.zeros(2), np.ones(2))
    logits = rng.normal(size=6)  # five faces and face_finder's placeholder row, which is not scored
    with_face = np.array([0, 1, 3, 4, 5])
    result = scorer.score_faces(np.zeros((6, 2)), logits, with_face, np.zeros(5, int), 6, TrackConfig())
    probabilities = 1 / (1 + np.exp(-logits[:5]))
    assert result.video_score == pytest.approx(probabilities.mean())
    np.testing.assert_allclose(result.frame_scores[with_face], probabilities)
    assert np.isnan(result.frame_scores[2]) and result.face_scores.shape == (5,)


def test_a_track_seen_once_in_many_frames_does_not_count():
    scorer = VideoScorer("logit", np.zeros(2), np.ones(2))
    # track 0: three real faces; track 1: one face, very fake, in one frame of 8 (min_track_faces 2)
    result = scorer.score_faces(np.zeros((4, 2)), np.array([-3.0, -3.0, -3.0, 5.0]), np.array([0, 1, 2, 2]),
                                np.array([0, 0, 0, 1]), 8, TrackConfig(min_track_faces=2))
    assert result.verdict == "real" and result.track_scores[1] > 0.99
    image = scorer.score_faces(np.zeros((2, 2)), np.array([-3.0, 5.0]), np.array([0, 0]), np.array([0, 1]), 1,
                               TrackConfig())  # an image: each face its own track, every one counts
    assert image.verdict == "fake" and image.video_score == pytest.approx(image.face_scores.max())


def test_a_forged_person_beside_a_real_one_decides_the_video():
    # frame 0: two faces (real track 0 at 0.1, forged track 1 at 0.9); frame 1: both again; frame 2: nobody
    result = aggregate_faces(np.array([0.1, 0.9, 0.2, 0.8]), np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), 3,
                             np.array([True, True]))
    np.testing.assert_allclose(result.track_scores, [0.15, 0.85])
    np.testing.assert_allclose(result.frame_scores, [0.9, 0.8, np.nan])
    assert result.video_score == pytest.approx(0.85) and result.verdict == "fake"


def test_tracks_that_do_not_count_are_left_out_and_no_face_stays_no_face():
    one_off = aggregate_faces(np.array([0.2, 0.2, 0.99]), np.array([0, 1, 2]), np.array([0, 0, 1]), 3,
                              np.array([True, False]))  # track 1: seen once, maybe a false detection
    assert one_off.video_score == pytest.approx(0.2) and one_off.verdict == "real"
    nobody = aggregate_faces(np.zeros(0), np.zeros(0, int), np.zeros(0, int), 4, np.zeros(0, bool))
    assert nobody.verdict == "no_face" and np.isnan(nobody.video_score) and np.isnan(nobody.frame_scores).all()
    nothing_counts = aggregate_faces(np.array([0.9]), np.array([1]), np.array([0]), 4, np.array([False]),
                                     VerdictThresholds(0.7, 0.3))
    assert nothing_counts.verdict == "no_face"


def test_mismatched_lengths_are_named():
    with pytest.raises(ValueError, match="2 face scores for 1 frames"):
        aggregate_faces(np.zeros(2), np.zeros(1, int), np.zeros(2, int), 2, np.array([True]))
