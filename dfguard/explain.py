"""``dfguard explain VIDEO``: why a video got its score, in four pictures.

- ``faces.png``: sampled frames with every face boxed, labelled with its track and P(fake);
- ``timeline.png``: each track's P(fake) along the video, with a row of its faces (``visualize.plot_tracks``);
- ``frequency.png``: the most suspicious face as the frequency stream sees it (the crop, its 8×8 block DCT
  coefficients, the high-pass map: the first paper's Figure 2, ``visualize.plot_dct_map``);
- ``embedding.png``: where each face's embedding lies between the real and the fake centre (CDNet's cluster
  view). Along the axis from the real centre (0) to the fake one (1) the coordinate ``t`` decides the cluster
  score, ``sigmoid(scale·(2t − 1))``, so the bisector ``t = 0.5`` is the decision boundary; across it, the
  distance from that axis, which the score ignores.

It scores in process (``dfguard.pipeline.LocalDetector``): the served ensemble gives the same scores but not the
embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfguard.pipeline import LocalDetector, LocalResult
from dfguard.video import DEFAULT_FRAMES, read_frames

TRACK_COLOURS = 10  # matplotlib's C0..C9, the same colour per track in every picture


@dataclass(frozen=True)
class Explanation:
    """What ``explain_video`` found and where it drew it."""

    result: LocalResult
    pictures: dict[str, Path]

    def summary(self) -> str:
        """A few lines for a person: the verdict, each track's score and faces, the pictures."""
        scores = self.result.scores
        lines = [f"verdict {scores.verdict}, video P(fake) {scores.video_score:.3f}, "
                 f"{len(self.result.faces)} faces in {len(scores.track_scores)} tracks"]
        for track in self.result.answer().tracks:
            counted = "" if self.result.faces.track_counts[track.id] else " (too few faces to count)"
            lines.append(f"  track {track.id}: P(fake) {track.score:.3f} over {track.faces} faces{counted}")
        lines += [f"  {name}: {path}" for name, path in self.pictures.items()]
        return "\n".join(lines)


def most_suspicious_face(result: LocalResult) -> int | None:
    """The index of the highest-scoring face of the highest-scoring track (the one the video score comes from)."""
    if not len(result.faces):
        return None
    tracks = result.scores.track_scores
    track = int(np.nanargmax(np.where(result.faces.track_counts, tracks, np.nan))) if (
        result.faces.track_counts.any()) else int(np.argmax(tracks))
    members = np.flatnonzero(result.faces.track == track)
    return int(members[np.argmax(result.scores.face_scores[members])])


def plot_boxed_frames(frames: np.ndarray, result: LocalResult, out: Path, *, shown: int = 8, title: str = "") -> Path:
    """Save up to ``shown`` of the sampled frames (evenly spread) with every face boxed in its track's colour and
    labelled ``track: P(fake)``."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    chosen = np.unique(np.linspace(0, len(frames) - 1, min(shown, len(frames))).round().astype(int))
    columns = min(4, len(chosen))
    rows = int(np.ceil(len(chosen) / columns))
    height, width = frames.shape[1:3]
    fig = Figure(figsize=(4.2 * columns, 4.2 * rows * height / width + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    faces = result.faces
    for ax, k in zip(axes, chosen, strict=False):
        ax.imshow(frames[k])
        for i in np.flatnonzero(faces.frame == k):
            x0, y0, x1, y1 = faces.detections[i].box
            colour = f"C{faces.track[i] % TRACK_COLOURS}"
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=colour, linewidth=2))
            ax.text(x0, y0 - 3, f"{faces.track[i]}: {result.scores.face_scores[i]:.2f}", color="white",
                    fontsize=8, bbox={"facecolor": colour, "edgecolor": "none", "pad": 1})
        ax.set_title(f"frame {result.frame_index[k]}: {int(faces.frame_faces[k])} face(s)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title or "faces, labelled track: P(fake)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def axis_coordinates(embeddings: np.ndarray, center_real: np.ndarray, center_fake: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each embedding's place between the centres: ``t`` along the axis (real centre 0, fake centre 1) and its
    distance from the axis, both in units of the distance between the centres."""
    real, fake = np.asarray(center_real, np.float64), np.asarray(center_fake, np.float64)
    axis = fake - real
    length = max(float(np.linalg.norm(axis)), 1e-12)
    offset = np.asarray(embeddings, np.float64) - real
    along = offset @ axis / length**2
    across = np.linalg.norm(offset - along[:, None] * axis, axis=1) / length
    return along, across


def plot_embedding(result: LocalResult, center_real: np.ndarray, center_fake: np.ndarray, out: Path, *,
                   title: str = "") -> Path:
    """Save the cluster view: each face at its ``axis_coordinates``, coloured by track, the centres and the
    decision boundary marked."""
    from matplotlib.figure import Figure

    along, across = axis_coordinates(result.embeddings, center_real, center_fake)
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for track in np.unique(result.faces.track):
        own = result.faces.track == track
        ax.scatter(along[own], across[own], s=22, color=f"C{track % TRACK_COLOURS}",
                   label=f"track {track}: {result.scores.track_scores[track]:.3f}")
    ax.scatter([0, 1], [0, 0], marker="*", s=260, color=["tab:green", "tab:red"], edgecolor="black", zorder=3)
    ax.annotate("real centre", (0, 0), textcoords="offset points", xytext=(0, -16), ha="center", fontsize=9)
    ax.annotate("fake centre", (1, 0), textcoords="offset points", xytext=(0, -16), ha="center", fontsize=9)
    ax.axvline(0.5, color="0.3", linestyle="--", linewidth=1, label="equally near both (P = 0.5 before calibration)")
    low, high = min(-0.25, float(along.min(initial=0)) - 0.1), max(1.25, float(along.max(initial=1)) + 0.1)
    top = max(float(across.max(initial=0)), 0.05)
    ax.set(xlim=(low, high), ylim=(-0.25 * top, 1.3 * top),
           xlabel="position along the real → fake axis (0: real centre, 1: fake centre)",
           ylabel="distance from the axis", title=title or "faces between CDNet's centres")
    ax.legend(fontsize=8, loc="upper left")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def explain_video(detector: LocalDetector, video: Path, out: Path, *, num_frames: int = DEFAULT_FRAMES
                  ) -> Explanation:
    """Score ``video`` in process and draw the four pictures into ``out``; the embedding view only for a model
    scored by CDNet's centres (stage 2), whose centres mean something."""
    from dfguard.faces.crops import crop_faces
    from dfguard.visualize import plot_dct_map, plot_tracks, track_crops

    frames = read_frames(video, num_frames)
    result = detector.score_frames(frames.images, frames.indices)
    scores, name = result.scores, Path(video).name
    answer = result.answer()
    faces, tracks = answer.faces, answer.tracks
    pictures = {"faces": plot_boxed_frames(frames.images, result, out / "faces.png", title=name)}
    crops = track_crops(dict(zip(frames.indices.tolist(), frames.images, strict=True)), faces) if faces else None
    pictures["timeline"] = plot_tracks(frames.indices.tolist(), scores.frame_scores.tolist(), out / "timeline.png",
                                       faces=faces, tracks=tracks, crops=crops, title=name, verdict=scores.verdict,
                                       flag_at=detector.spec.verdict.fake_at, video_score=scores.video_score)
    worst = most_suspicious_face(result)
    if worst is not None:
        crop = crop_faces(frames.images, result.faces, detector.spec.crop).faces[worst].transpose(1, 2, 0)
        plot_dct_map(np.ascontiguousarray(crop), out / "frequency.png", cutoff=detector.spec.cutoff,
                     title=f"track {result.faces.track[worst]}, frame {faces[worst].frame}: "
                           f"P(fake) {scores.face_scores[worst]:.2f}")
        pictures["frequency"] = out / "frequency.png"
    if detector.spec.score_rule == "cluster" and len(result.faces):
        pictures["embedding"] = plot_embedding(result, np.asarray(detector.spec.center_real),
                                               np.asarray(detector.spec.center_fake), out / "embedding.png",
                                               title=f"{name}: faces between the real and fake centres")
    return Explanation(result, pictures)
