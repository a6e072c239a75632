"""Pictures a person would rather look at than read: DCT maps, face boxes and crops, per-track score timelines with
contact sheets of each track's faces, score histograms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dfguard.answer import Face, Track
from dfguard.kernels import BLOCK, dct_highpass, freq_vector


def plot_dct_map(image: np.ndarray, out: Path, *, cutoff: int = 4, backend: str = "auto", title: str = "") -> None:
    """Save a 4-panel PNG: the image, its DCT high-pass map, per-block coefficient amplitudes, and the mean
    log-amplitude of each of the 64 frequencies (the first half of ``freq_vector``)."""
    from matplotlib.figure import Figure

    highpass = dct_highpass(image, cutoff=cutoff, backend=backend)
    coefficients = dct_highpass(image, cutoff=0, output="coefficients", backend=backend)
    mean_amplitude = freq_vector(image, backend=backend)[: BLOCK * BLOCK].reshape(BLOCK, BLOCK)
    limit = float(np.percentile(np.abs(highpass), 99)) or 1.0

    fig = Figure(figsize=(16, 4.4), layout="constrained")
    axes = fig.subplots(1, 4)
    axes[0].imshow(image)
    axes[0].set_title(title or "input")
    shown = axes[1].imshow(highpass, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1].set_title(f"8×8 DCT high-pass (cutoff {cutoff})")
    fig.colorbar(shown, ax=axes[1], shrink=0.8)
    shown = axes[2].imshow(np.log1p(np.abs(coefficients)), cmap="magma")
    axes[2].set_title("log(1 + |DCT coefficient|) per block")
    fig.colorbar(shown, ax=axes[2], shrink=0.8)
    shown = axes[3].imshow(mean_amplitude, cmap="viridis")
    axes[3].set_title("mean log-amplitude per frequency (u, v)")
    axes[3].set_xlabel("v")
    axes[3].set_ylabel("u")
    fig.colorbar(shown, ax=axes[3], shrink=0.8)
    for ax in axes[:3]:
        ax.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def plot_faces(image: np.ndarray, out: Path, *, title: str = "", detections: list | None = None) -> int:
    """Save a PNG of the frame with every detected box and keypoint (``detections``, by default those the
    service finds, ``dfguard.faces.search.detect_faces``), and the crops the models see (the largest face at
    256×256 and its four 64×64 parts). Returns the number of faces."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from dfguard.faces.crops import crop_frames
    from dfguard.faces.detect import KEYPOINT_NAMES
    from dfguard.faces.settings import PART_NAMES

    if detections is None:
        from dfguard.faces.search import detect_faces

        detections = detect_faces(image)
    crops = crop_frames([image], [detections])
    fig = Figure(figsize=(14, 5.2), layout="constrained")
    grid = fig.add_gridspec(2, 5, width_ratios=[3.2, 2, 1, 1, 0.01])
    frame_ax = fig.add_subplot(grid[:, 0])
    frame_ax.imshow(image)
    for face in detections:
        x0, y0, x1, y1 = face.box
        frame_ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", linewidth=2))
        frame_ax.scatter(*face.keypoints.T, c=range(len(KEYPOINT_NAMES)), cmap="tab10", s=18, vmin=0, vmax=9)
        frame_ax.text(x0, y0 - 4, f"{face.score:.2f}", color="lime", fontsize=9)
    frame_ax.set_title(f"{title or 'frame'}: {len(detections)} face(s)")
    face_ax = fig.add_subplot(grid[:, 1])
    face_ax.imshow(crops.faces[0].transpose(1, 2, 0))
    if crops.found[0]:
        face_ax.scatter(*crops.keypoints[0].T, c=range(len(KEYPOINT_NAMES)), cmap="tab10", s=18, vmin=0, vmax=9)
    face_ax.set_title("face crop (FACES)" if crops.found[0] else "no face")
    for k, name in enumerate(PART_NAMES):
        ax = fig.add_subplot(grid[k // 2, 2 + k % 2])
        ax.imshow(crops.parts[0, k].transpose(1, 2, 0))
        ax.set_title(name.replace("_", " "), fontsize=9)
    for ax in fig.axes:
        ax.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return len(detections)


def track_crops(frames: dict[int, np.ndarray], faces: Sequence[Face], per_track: int = 8, size: int = 96
                ) -> dict[int, list[tuple[np.ndarray, Face]]]:
    """Up to ``per_track`` face crops of each track (spread over its faces), cut from ``frames`` (video frame
    number → RGB frame) around each face's box as the models see them (square, margin 1.3): track → (crop, face)."""
    from dfguard.faces.crops import cut_square, square_around

    by_track: dict[int, list[Face]] = {}
    for face in faces:
        by_track.setdefault(face.track, []).append(face)
    sheet = {}
    for track, members in sorted(by_track.items()):
        chosen = [members[k] for k in np.unique(np.linspace(0, len(members) - 1, per_track).round().astype(int))]
        row = []
        for face in chosen:
            frame = frames[face.frame]
            x0, y0, x1, y1 = face.box
            square = square_around(np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32),
                                   1.3 * max(x1 - x0, y1 - y0), *frame.shape[:2])
            row.append((cut_square(frame, square, size).transpose(1, 2, 0), face))
        sheet[track] = row
    return sheet


def plot_tracks(frame_index: list[int], frame_scores: list[float | None], out: Path, *,
                faces: Sequence[Face] | None = None, tracks: Sequence[Track] | None = None,
                crops: dict[int, list[tuple[np.ndarray, Face]]] | None = None,
                title: str = "", flag_at: float = 0.5, verdict: str = "", video_score: float | None = None) -> Path:
    """Save a PNG of a video's scores: a timeline of P(fake) along its frames, one line per track (or the frame
    scores when the faces are not known), frames without a face as grey bands, the threshold and the video score
    as lines; below it, with ``crops`` (``track_crops``), a contact sheet: a row of each track's faces."""
    from matplotlib.figure import Figure

    index = np.asarray(frame_index, float)
    scores = np.array([np.nan if s is None else s for s in frame_scores], float)
    rows = len(crops or {})
    columns = max((len(row) for row in (crops or {}).values()), default=0)
    fig = Figure(figsize=(max(8.0, 1.1 * columns + 1.6), 3 + 1.15 * rows), layout="constrained")
    grid = fig.add_gridspec(1 + rows, max(columns, 1), height_ratios=[2.6] + [1] * rows)
    ax = fig.add_subplot(grid[0, :])
    step = float(np.median(np.diff(index))) if len(index) > 1 else 1.0
    for k in np.flatnonzero(np.isnan(scores)):
        ax.axvspan(index[k] - step / 2, index[k] + step / 2, color="0.85", linewidth=0)
    colours = [f"C{k % 10}" for k in range(10)]
    if faces and tracks:
        for track in tracks:
            own = sorted((f.frame, f.score) for f in faces if f.track == track.id)
            ax.plot(*zip(*own, strict=True), "o-", color=colours[track.id % 10], markersize=3,
                    label=f"track {track.id}: {track.score:.3f} ({track.faces} faces)")
    else:
        ax.plot(index, scores, "o-", color="tab:red", markersize=3, label="frame P(fake)")
    ax.axhline(flag_at, color="0.3", linewidth=1, label=f"flagged at {flag_at:.3g}")
    if video_score is not None:
        ax.axhline(video_score, color="tab:red", linestyle="--", linewidth=1, label=f"video {video_score:.3f}")
    ax.set(ylim=(-0.02, 1.02), xlabel="frame", ylabel="P(fake)",
           title=" — ".join(filter(None, [title, verdict])) + ("" if np.isfinite(scores).any() else " (no face)"))
    ax.legend(loc="best", fontsize=8)
    for r, (track, row) in enumerate(sorted((crops or {}).items())):
        for c, (crop, face) in enumerate(row):
            cell = fig.add_subplot(grid[1 + r, c])
            cell.imshow(crop)
            cell.set_xticks([])
            cell.set_yticks([])
            for spine in cell.spines.values():
                spine.set_color(colours[track % 10])
                spine.set_linewidth(2)
            cell.set_title(f"frame {face.frame}: {face.score:.2f}", fontsize=7)
            if c == 0:
                cell.set_ylabel(f"track {track}", fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def plot_score_histogram(scores: list[float], out: Path, *, flag_at: float = 0.5, title: str = "") -> Path:
    """Save a PNG histogram of video scores with the flagging threshold marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.hist(scores, bins=np.linspace(0, 1, 21), color="tab:blue", edgecolor="white")
    ax.axvline(flag_at, color="tab:red", label=f"flagged at {flag_at:g}")
    ax.set(xlabel="video P(fake)", ylabel="videos", title=title or f"{len(scores)} videos with a face")
    ax.legend()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def plot_watch(lines: Sequence[dict], out: Path, *, fake_at: float = 0.5, title: str = "",
               entrances: Sequence[float] = ()) -> Path:
    """Save a PNG of a ``dfguard watch`` session from its JSON lines: each track's window P(fake) against the
    source's time (a step per window), the alert threshold, every alert (a red marker where it was raised) and
    dropped windows (grey bands); ``entrances``: source times to mark (where a forged face entered, when known)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax = fig.subplots()
    by_track: dict[int, list[tuple[float, float, float]]] = {}
    for line in lines:
        if line.get("event") == "window":
            for track in line["tracks"]:
                by_track.setdefault(track["id"], []).append((line["start"], line["end"], track["score"]))
        elif line.get("event") == "dropped":
            ax.axvspan(line["start"], line["end"], color="0.85", lw=0)
    for track_id, spans in sorted(by_track.items()):
        times = [t for start, end, _ in spans for t in (start, end)]
        scores = [s for _, _, s in spans for _ in (0, 1)]
        ax.plot(times, scores, lw=2, label=f"track {track_id}")
    ax.axhline(fake_at, color="tab:red", ls="--", lw=1, label=f"fake at {fake_at:g}")
    for entrance in entrances:
        ax.axvline(entrance, color="0.3", ls=":", lw=1.5)
    alerts = [line for line in lines if line.get("event") == "alert"]
    if alerts:
        ax.scatter([a["time"] for a in alerts], [a["score"] for a in alerts], marker="v", s=120, color="tab:red",
                   zorder=5, label="alert raised")
    ax.set(xlabel="source time (s)", ylabel="track P(fake) per window", ylim=(-0.02, 1.05),
           title=title or f"dfguard watch: {len(by_track)} tracks, {len(alerts)} alerts")
    ax.legend(loc="upper left", fontsize=8, ncols=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
