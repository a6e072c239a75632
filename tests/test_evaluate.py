"""dfguard.train.evaluate: the video score of evaluation is the served rule (the most suspicious track)."""

from __future__ import annotations

import numpy as np

from dfguard.scoring import aggregate_faces
from dfguard.train.evaluate import Scored


def test_a_video_scores_as_served_by_its_most_suspicious_track_that_counts():
    # video a (fake): a real person (track 0, 0.1) beside a forged one (track 1, 0.9), two frames;
    # video b (real): one person at 0.2, and a one-frame false detection at 0.95 that does not count
    scores = np.array([0.1, 0.9, 0.1, 0.9, 0.2, 0.95, 0.2])
    scored = Scored(scores, np.array([1, 1, 1, 1, 0, 0, 0]), ["a"] * 4 + ["b"] * 3, ["nearest"] * 4 + ["real"] * 3,
                    np.array([0, 0, 1, 1, 0, 0, 1]), np.array([0, 1, 0, 1, 0, 1, 0]),
                    {"a": (2, np.array([True, True])), "b": (2, np.array([True, False]))})
    video, labels, methods = scored.by_video()
    assert video.tolist() == [0.9, 0.2] and labels.tolist() == [1, 0] and methods == ["nearest", "real"]
    served = aggregate_faces(scores[:4], scored.frames[:4], scored.track_ids[:4], 2, np.array([True, True]))
    assert video[0] == served.video_score
    metrics = scored.metrics()
    assert metrics["video"]["auc"] == 1.0 and metrics["video"]["no_track"] == 0
    nobody = Scored(scores[4:5], np.array([0]), ["c"], ["real"], np.array([0]), np.array([0]),
                    {"c": (8, np.array([False]))})
    assert nobody.metrics()["video"]["no_track"] == 1  # no track counts: left out, and counted
