"""``dfguard explain``: the cluster view's coordinates against the scoring rule, and the four pictures of a video
of two people, one forged, drawn from the same scores the in-process pipeline gives."""

from __future__ import annotations

import numpy as np
from matplotlib.image import imread

from dfguard.cli import main
from dfguard.explain import axis_coordinates, explain_video, most_suspicious_face
from dfguard.faces.decode import pairwise_iou
from dfguard.pipeline import LocalDetector
from dfguard.scoring import VideoScorer


def test_the_axis_coordinate_is_what_the_cluster_score_reads(rng):
    center_real, center_fake = rng.normal(size=(2, 200))
    embeddings = rng.normal(size=(50, 200)) * 2 + center_real
    along, across = axis_coordinates(embeddings, center_real, center_fake)
    scorer = VideoScorer("cluster", center_real, center_fake)
    expected = scorer.frame_scores(embeddings, np.zeros(50))
    np.testing.assert_allclose(1 / (1 + np.exp(-scorer.cluster_scale * (2 * along - 1))), expected, rtol=1e-9)
    # the two coordinates are the sides of a right triangle whose hypotenuse is the distance to the real centre
    length = np.linalg.norm(center_fake - center_real)
    np.testing.assert_allclose(np.hypot(along, across) * length, np.linalg.norm(embeddings - center_real, axis=1))
    np.testing.assert_allclose(axis_coordinates(np.stack([center_real, center_fake]), center_real, center_fake),
                               [[0, 1], [0, 0]], atol=1e-12)


def looks_drawn(path) -> bool:
    """A PNG a person can look at: big enough and not one flat colour."""
    image = imread(path)
    return min(image.shape[:2]) > 200 and float(image[..., :3].std()) > 0.05


def test_explain_draws_the_forged_person_of_two(trained, two_people, tmp_path, capsys):
    forged = two_people["forged"]
    detector = LocalDetector(trained / "best.pt")
    explanation = explain_video(detector, forged.path, tmp_path / "explain", num_frames=8)
    assert set(explanation.pictures) == {"faces", "timeline", "frequency", "embedding"}
    assert all(looks_drawn(p) for p in explanation.pictures.values())

    result, same = explanation.result, detector.score(forged.path, 8)
    np.testing.assert_allclose(result.scores.track_scores, same.scores.track_scores)
    assert len(result.scores.track_scores) == 2 and len(result.embeddings) == len(result.faces) == 16
    worst = most_suspicious_face(result)
    first = result.faces.frame == 0
    overlap = pairwise_iou(forged.boxes[forged.forged][None], result.faces.boxes[first])[0]
    assert overlap.max() > 0.5
    forged_track = result.faces.track[first][overlap.argmax()]
    assert result.faces.track[worst] == forged_track
    assert result.scores.face_scores[worst] == result.scores.face_scores[result.faces.track == forged_track].max()
    along, _ = axis_coordinates(result.embeddings, np.asarray(detector.spec.center_real),
                                np.asarray(detector.spec.center_fake))
    own = result.faces.track == forged_track
    assert along[own].mean() > along[~own].mean()  # the forged person sits nearer the fake centre

    assert main(["explain", str(forged.path), "--checkpoint", str(trained / "best.pt"), "--out",
                 str(tmp_path / "cli"), "--num-frames", "8"]) == 0
    printed = capsys.readouterr().out
    assert "track 0" in printed and "track 1" in printed and "embedding.png" in printed
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["embedding.png", "faces.png", "frequency.png",
                                                                     "timeline.png"]
