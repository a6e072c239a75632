"""``dfguard review RESULTS.jsonl --videos DIR``: a local page where a moderator sees why a video was scored as it
was, decides, and leaves each decision as one crash-safe line.

A Flask app, server-rendered HTML, no build step. The list shows the scored videos by P(fake), with verdict,
decision and filters; a video's page shows its frames with every face boxed in its track's colour, the track
timeline, the frequency view of its most suspicious face, and where its P(fake) sits against the operating point
(``--flag-at``), with a form to mark the video or one track fake, real or unsure. Every request needs the key (a
query ``?key=`` once, then a cookie; or the ``X-Review-Key`` header); only files under ``--videos`` are read;
a results line that cannot be read is listed as such and the rest is served.

Decisions (``--decisions``, default ``decisions.jsonl`` beside the results) are appended through
``AppendOnlyFile`` (one ``write`` and ``fsync`` per line): ``{"who", "when", "path", "sha256", "track", "label",
"note", "score", "verdict"}``, where ``score`` is the P(fake) the moderator saw (the track's, when a track was
marked). ``dfguard calibrate --labels`` reads them back.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfguard.appendfile import AppendOnlyFile
from dfguard.calibration import Calibration
from dfguard.client.results import Record, ResultsFile

LABELS = ("fake", "real", "unsure")
COOKIE = "dfguard_review_key"
# Matplotlib's default cycle, the colours the track timeline (``plot_tracks``) gives tracks 0, 1, 2, ...
TRACK_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                 "#17becf")


@dataclass(frozen=True)
class Decision:
    """One moderator's decision on a video (``track`` None) or on one of its tracks."""

    who: str
    when: float
    path: str
    sha256: str
    track: int | None
    label: str
    note: str
    score: float | None
    verdict: str | None


def read_results(path: Path) -> tuple[list[Record], list[str]]:
    """The records of a JSONL results file, and one message per line that could not be read (the rest is kept)."""
    records, problems = [], []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(ResultsFile.parse_line(line))
            except (ValueError, KeyError, TypeError) as error:
                problems.append(f"{Path(path).name} line {number}: not a results record ({type(error).__name__}: "
                                f"{error})")
    return records, problems


def read_decisions(path: Path) -> list[Decision]:
    """Every decision of a decisions file, in the order they were made (a torn last line is skipped)."""
    if not Path(path).is_file():
        return []
    decisions = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            decisions.append(Decision(**json.loads(line)))
        except (ValueError, TypeError):
            continue  # a line cut short by a crash: the decision was not made
    return decisions


def latest(decisions: list[Decision]) -> dict[tuple[str, int | None], Decision]:
    """The last decision on each (video, track)."""
    return {(d.path, d.track): d for d in decisions}


class Review:
    """The app's state: the results, the videos folder, the decisions file and the key."""

    def __init__(self, results: Path, videos: Path | None, decisions: Path, key: str, flag_at: float = 0.5,
                 who: str = "moderator") -> None:
        self.results, self.videos = Path(results), Path(videos).resolve() if videos else None
        self.decisions, self.key, self.flag_at, self.who = AppendOnlyFile(Path(decisions)), key, flag_at, who
        self.decoded: dict[tuple[str, str], dict[int, Any]] = {}  # the last videos' face frames, for their pictures

    def records(self) -> tuple[list[Record], list[str]]:
        """The results as they are now (read on each page: a run still scoring adds to them)."""
        records, problems = read_results(self.results)
        return sorted(records, key=lambda r: -1.0 if r.score is None else -r.score), problems

    def video_file(self, record: Record) -> Path:
        """The record's file, which must lie under the videos folder."""
        if self.videos is None:
            raise PermissionError("no --videos folder was given: frames are not shown")
        path = Path(record.path).resolve()
        if not path.is_relative_to(self.videos):
            raise PermissionError(f"{record.path} is outside the videos folder {self.videos}: not served")
        if not path.is_file():
            raise FileNotFoundError(f"{record.path} is not there any more")
        return path

    def decide(self, record: Record, track: int | None, label: str, note: str, who: str) -> Decision:
        """Append one decision durably; returns it."""
        if label not in LABELS:
            raise ValueError(f"a decision is one of {', '.join(LABELS)}, got {label!r}")
        tracks = {t.id: t for t in record.tracks or ()}
        if track is not None and track not in tracks:
            raise ValueError(f"{record.path} has no track {track}")
        score = tracks[track].score if track is not None else record.score
        decision = Decision(who, round(time.time(), 3), record.path, record.sha256, track, label, note.strip()[:2000],
                            score, record.verdict)
        self.decisions.append(json.dumps(decision.__dict__, allow_nan=False) + "\n")
        return decision


def create_app(review: Review) -> Any:
    """The Flask app of ``review``."""
    from flask import Flask, Response, abort, make_response, redirect, render_template_string, request, url_for

    app = Flask("dfguard.review")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024

    def right(given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), review.key.encode())

    @app.before_request
    def check_key() -> Any:
        given = request.args.get("key") or request.headers.get("X-Review-Key") or request.cookies.get(COOKIE)
        if not right(given):
            return Response("wrong or missing review key: open the address dfguard review printed (it carries "
                            "?key=...)\n", status=403, mimetype="text/plain")
        return None

    @app.after_request
    def remember_key(response: Response) -> Response:
        if right(request.args.get("key")):  # only a right key is remembered
            response.set_cookie(COOKIE, review.key, httponly=True, samesite="Strict")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'unsafe-inline'"
        return response

    @app.errorhandler(PermissionError)
    def refused(error: PermissionError) -> Response:
        return Response(f"{error}\n", status=403, mimetype="text/plain")

    @app.errorhandler(ValueError)
    def bad(error: ValueError) -> Response:
        return Response(f"{error}\n", status=400, mimetype="text/plain")

    def record_at(number: int) -> Record:
        records, _ = review.records()
        if not 0 <= number < len(records):
            abort(404)
        return records[number]

    @app.get("/")
    def index() -> str:
        records, problems = review.records()
        verdict, minimum = request.args.get("verdict", ""), request.args.get("min", "")
        floor = float(minimum) if minimum else None
        decided = latest(read_decisions(review.decisions.path))
        rows = [(k, r, decided.get((r.path, None))) for k, r in enumerate(records)
                if (not verdict or r.verdict == verdict or (verdict == "error" and r.status == "error"))
                and (floor is None or (r.score is not None and r.score >= floor))]
        return render_template_string(INDEX, rows=rows, problems=problems, verdict=verdict, minimum=minimum,
                                      flag_at=review.flag_at, results=review.results.name, total=len(records),
                                      verdicts=("fake", "uncertain", "real", "no_face", "error"), name=Path)

    @app.get("/video/<int:number>")
    def video(number: int) -> str:
        record = record_at(number)
        decided = latest(read_decisions(review.decisions.path))
        try:
            review.video_file(record)
            shown = None
        except (PermissionError, FileNotFoundError) as error:
            shown = str(error)
        colours = {t.id: TRACK_COLOURS[t.id % len(TRACK_COLOURS)] for t in record.tracks or ()}
        return render_template_string(VIDEO, record=record, number=number, shown=shown, colours=colours,
                                      flag_at=review.flag_at, labels=LABELS, name=Path(record.path).name,
                                      decision=decided.get((record.path, None)),
                                      track_decisions={t.id: decided.get((record.path, t.id))
                                                       for t in record.tracks or ()})

    @app.post("/video/<int:number>/decide")
    def decide(number: int) -> Any:
        # the video is named by the form, not by its place in the list, which moves when the results grow
        records, _ = review.records()
        key = (request.form.get("path", ""), request.form.get("sha256", ""))
        record = next((r for r in records if r.key == key), None)
        if record is None:
            return Response(f"{key[0] or 'the video'} (as scored) is not in {review.results.name}: reload the page\n",
                            status=409, mimetype="text/plain")
        number = records.index(record)
        track = request.form.get("track", "")
        review.decide(record, int(track) if track else None, request.form.get("label", ""),
                      request.form.get("note", ""), request.form.get("who", "") or review.who)
        return redirect(url_for("video", number=number), code=303)

    @app.get("/video/<int:number>/<picture>.png")
    def image(number: int, picture: str) -> Response:
        record = record_at(number)
        drawers = {"frames": draw_frames, "timeline": draw_timeline, "frequency": draw_frequency}
        if picture not in drawers:
            abort(404)
        png = drawers[picture](record, review)
        response = make_response(png)
        response.headers["Content-Type"] = "image/png"
        response.headers["Cache-Control"] = "private, max-age=300"
        return response

    return app


def face_frames_checked(record: Record, review: Review) -> dict[int, Any]:
    """The record's face frames, decoded from its file under the videos folder, if it is still the file scored;
    kept for the few videos viewed last, so a page's three pictures read and decode the file once."""
    from dfguard.client.batch import face_frames

    if record.key in review.decoded:
        return review.decoded[record.key]
    path = review.video_file(record)
    if record.sha256 and hashlib.sha256(path.read_bytes()).hexdigest() != record.sha256:
        raise PermissionError(f"{record.path} changed since it was scored: not shown")
    frames = face_frames(record)
    while len(review.decoded) >= 4:
        review.decoded.pop(next(iter(review.decoded)))
    review.decoded[record.key] = frames
    return frames


def png(fig: Any) -> bytes:
    """A Matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def draw_frames(record: Record, review: Review) -> bytes:
    """Up to 8 of the frames with faces, every face boxed in its track's colour with its track and P(fake)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    frames = face_frames_checked(record, review)
    shown = sorted(frames)[:: max(1, len(frames) // 8)][:8]
    fig = Figure(figsize=(4 * min(len(shown), 4), 3 * ((len(shown) + 3) // 4)), layout="constrained")
    axes = fig.subplots((len(shown) + 3) // 4, min(len(shown), 4), squeeze=False).ravel()
    for ax, frame in zip(axes, shown, strict=False):
        ax.imshow(frames[frame])
        for face in [f for f in record.faces or () if f.frame == frame]:
            colour = TRACK_COLOURS[face.track % len(TRACK_COLOURS)]
            x0, y0, x1, y1 = face.box
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=colour, lw=2))
            ax.text(x0, y0, f"#{face.track} {face.score:.2f}", color="white", fontsize=8, va="bottom",
                    bbox={"facecolor": colour, "pad": 1, "lw": 0})
        ax.set_title(f"frame {frame}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return png(fig)


def draw_timeline(record: Record, review: Review) -> bytes:
    """The track timeline with each track's faces (``dfguard.visualize.plot_tracks``)."""
    import tempfile

    from dfguard.visualize import plot_tracks, track_crops

    crops = track_crops(face_frames_checked(record, review), record.faces) if record.faces else None
    with tempfile.TemporaryDirectory() as scratch:
        out = plot_tracks(record.frame_index or [], record.frame_scores or [], Path(scratch) / "t.png",
                          faces=record.faces, tracks=record.tracks, crops=crops, title=Path(record.path).name,
                          flag_at=review.flag_at, verdict=record.verdict or "", video_score=record.score)
        return out.read_bytes()


def draw_frequency(record: Record, review: Review) -> bytes:
    """The DCT view of the most suspicious face (``dfguard.visualize.plot_dct_map``)."""
    import tempfile

    import numpy as np

    from dfguard.visualize import plot_dct_map

    if not record.faces:
        raise ValueError(f"{record.path} has no face")
    face = max(record.faces, key=lambda f: f.score)
    frame = face_frames_checked(record, review)[face.frame]
    x0, y0, x1, y1 = (round(v) for v in face.box)
    crop = np.ascontiguousarray(frame[max(y0, 0):max(y1, 1), max(x0, 0):max(x1, 1)])
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "f.png"
        plot_dct_map(crop, out, title=f"track #{face.track}, frame {face.frame}, P(fake) {face.score:.2f}")
        return out.read_bytes()


def decided_labels(decisions: list[Decision]) -> dict[tuple[str, str], int]:
    """Each decided video's label (1 fake, 0 real), keyed by (path, sha256): its own last decision, else its tracks'
    (fake when any track was marked fake, real when every marked track was); ``unsure`` decides nothing."""
    videos: dict[tuple[str, str], str] = {}
    tracks: dict[tuple[str, str], dict[int, str]] = {}
    for d in decisions:
        if d.track is None:
            videos[(d.path, d.sha256)] = d.label
        else:
            tracks.setdefault((d.path, d.sha256), {})[d.track] = d.label
    labels = {}
    for key in set(videos) | set(tracks):
        label = videos.get(key)
        if label is None:
            marked = set(tracks.get(key, {}).values()) - {"unsure"}
            label = "fake" if "fake" in marked else "real" if marked == {"real"} else "unsure"
        if label != "unsure":
            labels[key] = int(label == "fake")
    return labels


def calibrate_from_decisions(decisions: Path, results: Path, calibration: Calibration, fake_at: float, out: Path, *,
                             fake_fpr: float = 0.01, real_fnr: float = 0.05, fake_rate: float | None = None) -> str:
    """Fit the calibration and verdict thresholds from moderators' decisions and the served scores of the videos
    they decided (no rescoring): the served P(fake) is taken back through the calibration it was served with
    (``calibration``, the repository's) to the model's raw score, which the new calibration maps; ``fake_at``: the
    served ``fake`` threshold. Writes ``calibration.json`` (``dfguard export --calibration``) and ``calibration.md``
    into ``out``; returns the report, which starts with the false-positive rate of the served ``fake`` threshold on
    the labelled traffic."""
    import numpy as np

    from dfguard.verdicts import fit_verdicts

    labels = decided_labels(read_decisions(decisions))
    records, _ = read_results(results)
    scored = [(r.score, labels[r.key]) for r in records if r.key in labels and r.score is not None]
    if not scored:
        raise ValueError(f"no decided video of {decisions} has a score in {results} (matched by path and content)")
    served, truth = (np.array(column, np.float64) for column in zip(*scored, strict=True))
    reals, fakes = int((truth == 0).sum()), int((truth == 1).sum())
    source = f"{reals} real and {fakes} fake videos decided by moderators ({Path(decisions).name})"
    fitted, _ = fit_verdicts(calibration.invert(served), truth, source, fake_fpr=fake_fpr, real_fnr=real_fnr,
                             fake_rate=fake_rate)
    now = fitted.calibration.apply(calibration.invert(served))
    new_at = fitted.verdict.fake_at

    def rates(scores: np.ndarray, threshold: float) -> str:
        flagged = scores >= threshold
        return (f"{int(flagged[truth == 0].sum())} of {reals} real videos flagged (FPR "
                f"{flagged[truth == 0].mean():.1%}), {int(flagged[truth == 1].sum())} of {fakes} fakes caught")

    lines = [f"Labelled traffic: {source}, {len(labels) - len(scored)} decided videos without a score here.", "",
             f"The served `fake` threshold {fake_at:.3f}: {rates(served, fake_at)}.", "",
             f"Refitted: P(fake) = sigmoid({fitted.calibration.slope:.3f}·logit(raw) "
             f"{fitted.calibration.intercept:+.3f}); `fake` at ≥ {new_at:.3f} ({rates(now, new_at)}), `real` at ≤ "
             f"{fitted.verdict.real_at:.3f}.", "",
             "| target FPR | threshold | FPR here | TPR | TPR 95 % interval |", "|---:|---:|---:|---:|---|"]
    lines += [f"| {p.target_fpr:.1%} | {p.threshold:.4f} | {p.fpr:.1%} | {p.tpr:.3f} | {p.tpr_low:.3f}–"
              f"{p.tpr_high:.3f} |" for p in fitted.operating_points]
    if reals < 1000:
        lines += ["", f"With {reals} real videos decided, an FPR target under {1 / max(reals, 1):.1%} is not measured "
                  "that finely: decide more real traffic."]
    report = "\n".join(lines) + "\n"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(fitted.to_json())
    (out / "calibration.md").write_text(report)
    return report


def new_key() -> str:
    """A fresh review key."""
    return secrets.token_urlsafe(24)


STYLE = """<style>body{font-family:sans-serif;margin:1.5em;max-width:1200px}table{border-collapse:collapse}
td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}.fake{color:#b00;font-weight:bold}
.real{color:#070}.problem{background:#fee;padding:.5em;border:1px solid #c99}img{max-width:100%}
.bar{height:.8em;background:#ddd;position:relative;width:300px;margin-bottom:.8em}
.bar span{position:absolute;top:0;bottom:0}
</style>"""

INDEX = STYLE + """<title>dfguard review</title><h1>{{ results }}: {{ total }} inputs by P(fake)</h1>
{% for p in problems %}<p class="problem" id="problem">{{ p }}</p>{% endfor %}
<form method="get">verdict <select name="verdict"><option value="">any</option>
{% for v in verdicts %}<option {% if v == verdict %}selected{% endif %}>{{ v }}</option>{% endfor %}</select>
P(fake) at least <input name="min" value="{{ minimum }}" size="4"> <button>filter</button>
(flagged at {{ flag_at }})</form>
<table id="videos"><tr><th>#</th><th>file</th><th>P(fake)</th><th>verdict</th><th>faces</th><th>tracks</th>
<th>decision</th></tr>
{% for k, r, d in rows %}<tr><td>{{ k }}</td><td><a href="/video/{{ k }}">{{ name(r.path).name }}</a></td>
<td>{{ "%.3f"|format(r.score) if r.score is not none else "–" }}</td><td class="{{ r.verdict }}">
{{ r.verdict or r.status }}</td><td>{{ r.face_count or 0 }}</td><td>{{ (r.tracks or [])|length }}</td>
<td>{{ d.label if d else "" }}</td></tr>{% endfor %}</table>"""

VIDEO = STYLE + """<title>{{ name }}</title><p><a href="/">all videos</a></p><h1>{{ name }}</h1>
<p>P(fake) <b>{{ "%.3f"|format(record.score) if record.score is not none else "–" }}</b>, verdict
<span class="{{ record.verdict }}">{{ record.verdict or record.status }}</span>{% if record.score is not none %};
{{ "above" if record.score >= flag_at else "below" }} the operating point {{ flag_at }} by
{{ "%.3f"|format((record.score - flag_at)|abs) }}{% endif %}.</p>
{% if record.score is not none %}<div class="bar"><span style="left:0;width:{{ (record.score * 300)|int }}px;
background:#c44"></span><span style="left:{{ (flag_at * 300)|int }}px;width:2px;background:#000"></span></div>
{% endif %}{% if record.error %}<p class="problem">{{ record.error }}</p>{% endif %}
{% if decision %}<p id="decision">decided: <b>{{ decision.label }}</b> by {{ decision.who }}
{% if decision.note %}({{ decision.note }}){% endif %}</p>{% endif %}
<form method="post" action="/video/{{ number }}/decide" id="decide">
<input type="hidden" name="path" value="{{ record.path }}">
<input type="hidden" name="sha256" value="{{ record.sha256 }}">mark
<select name="track"><option value="">the video</option>{% for t in record.tracks or [] %}
<option value="{{ t.id }}">track #{{ t.id }} (P(fake) {{ "%.2f"|format(t.score) }})</option>{% endfor %}
</select>{% for label in labels %} <button name="label" value="{{ label }}" id="mark-{{ label }}">{{ label }}
</button>{% endfor %} note <input name="note" size="40"> by <input name="who" size="12"></form>
<table><tr><th>track</th><th>P(fake)</th><th>faces</th><th>frames</th><th>decision</th></tr>
{% for t in record.tracks or [] %}<tr><td style="color:{{ colours[t.id] }}">#{{ t.id }}</td>
<td>{{ "%.3f"|format(t.score) }}</td><td>{{ t.faces }}</td><td>{{ t.first_frame }}–{{ t.last_frame }}</td>
<td>{{ track_decisions[t.id].label if track_decisions[t.id] else "" }}</td></tr>{% endfor %}</table>
{% if shown %}<p class="problem">{{ shown }}</p>{% elif record.faces %}
<h2>faces</h2><img id="frames" src="/video/{{ number }}/frames.png" alt="frames with faces boxed">
<h2>tracks</h2><img src="/video/{{ number }}/timeline.png" alt="track timeline">
<h2>most suspicious face, frequency view</h2><img src="/video/{{ number }}/frequency.png" alt="DCT view">
{% endif %}"""


def serve(review: Review, host: str = "127.0.0.1", port: int = 8787) -> None:
    """Serve the page until interrupted (a threaded WSGI server: pictures are drawn while pages load)."""
    from werkzeug.serving import make_server

    server = make_server(host, port, create_app(review), threaded=True)
    print(f"dfguard review: http://{host}:{server.server_port}/?key={review.key}", flush=True)
    server.serve_forever()
