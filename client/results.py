"""The results file of ``dfguard score``: one record per input, JSONL or CSV, append-only and crash-safe.

Each record is one line of a ``dfguard.appendfile.AppendOnlyFile``: a crash can only leave a torn last line;
``ResultsFile.open`` cuts it off (that input is scored again), so a rerun sees every finished record exactly once
and skips those inputs.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from dfguard.answer import Face, Track, top_track
from dfguard.appendfile import AppendOnlyFile

STATUSES = ("ok", "no_face", "error")


@dataclass(frozen=True)
class Record:
    """One input's outcome. ``score`` is P(fake) (None without faces or on error); ``verdict`` the model's
    (its verdict thresholds); ``frame_index``/``frame_scores``: the frames looked at and their scores (None
    without a face); ``faces`` and ``tracks``: every face and track (``dfguard.answer``; a JSON object each, with
    those fields); ``error``: why it failed. A CSV row keeps
    the top track only (``TOP_TRACK``). Whether an input is flagged is not stored: it depends on the
    reader's ``flag_at`` (``is_flagged``), so a file and a summary can never disagree."""

    path: str
    sha256: str
    kind: str
    status: str
    score: float | None = None
    verdict: str | None = None
    face_count: int | None = None
    frame_index: list[int] | None = None
    frame_scores: list[float | None] | None = None
    model: str | None = None
    model_version: str | None = None
    attempts: int | None = None
    seconds: float | None = None
    error: str | None = None
    faces: tuple[Face, ...] | None = None
    tracks: tuple[Track, ...] | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What makes an input the same input on a rerun: its path and its content."""
        return self.path, self.sha256

    def is_flagged(self, flag_at: float) -> bool:
        """The one flagging rule: a score at or above ``flag_at`` (never an input without a score)."""
        return self.score is not None and self.score >= flag_at

    @property
    def top_track(self) -> Track | None:
        """The track with the highest score (None without tracks)."""
        return top_track(self.tracks)

    @classmethod
    def from_values(cls, values: dict, wanted: frozenset[str]) -> Record:
        """The record of a JSONL line's values, its ``wanted`` fields only (keys of older versions, such as a stored
        ``flagged``, are dropped: a record is what this version writes)."""
        kept = {k: v for k, v in values.items() if k in wanted}
        if kept.get("faces") is not None:
            kept["faces"] = tuple(Face.from_dict(face) for face in kept["faces"])
        if kept.get("tracks") is not None:
            kept["tracks"] = tuple(Track.from_dict(track) for track in kept["tracks"])
        return cls(**kept)


FIELDS = [f.name for f in fields(Record)]
NESTED = ("faces", "tracks")  # JSONL only: a CSV row has the top track's columns instead
DETAILS = ("frame_index", "frame_scores", *NESTED)  # the bulk of a record: left out of an outline
ALL_FIELDS = frozenset(FIELDS)
OUTLINE = ALL_FIELDS - frozenset(DETAILS)
TOP_TRACK = ("id", "score", "faces", "first_frame", "last_frame")
CSV_FIELDS = [f for f in FIELDS if f not in NESTED] + [f"top_track_{k}" for k in TOP_TRACK]
CSV_HEADER = ",".join(CSV_FIELDS) + "\n"
FACE_FIELDS = ["face_frame", "face_x0", "face_y0", "face_x1", "face_y1", "face_track", "face_score"]
PER_FACE_HEADER = ",".join(CSV_FIELDS + FACE_FIELDS) + "\n"
REQUIRED_TEXT = ("path", "sha256", "kind", "status")  # "" stays "" (the hash of a file that could not be read)
LIST_FIELDS = ("frame_index", "frame_scores")


class TornRecordError(ValueError):
    """A results file read as finished ends in a record cut short: the run writing it is still going, or crashed."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: its last record is torn (is its run still going? rerun it to finish)")


def record_key(line: str) -> tuple[str, str]:
    """The key (path, content hash) of a JSONL record line."""
    values = json.loads(line)
    return values["path"], values["sha256"]


class ResultsFile:
    """``records.jsonl`` or ``records.csv`` (by suffix): read what is there, then append records one by one.

    ``per_face`` (CSV only): one row per face instead of one per input, the input's columns repeated and the
    face's (``FACE_FIELDS``) added; an input without faces keeps one row with those empty. An input's rows are one
    append, and an input with fewer rows than its ``face_count`` (a crash mid-write) is dropped and scored again.
    A file written by this version keeps its layout on later runs."""

    def __init__(self, path: Path, *, per_face: bool = False) -> None:
        self.path = Path(path)
        self.file = AppendOnlyFile(self.path)
        self.format = "csv" if self.path.suffix.lower() == ".csv" else "jsonl"
        if per_face and self.format != "csv":
            raise ValueError(f"one row per face is a CSV layout; {self.path.name} is JSONL, which nests the faces")
        self.per_face = per_face
        self.header = PER_FACE_HEADER if per_face else CSV_HEADER
        self.repaired = 0  # bytes of a torn last record cut off when opening

    def open(self, *, outline: bool = False) -> list[Record]:
        """The records already written (after cutting off a torn last line), ready for appending. ``outline``: JSONL
        records without their per-frame and per-face lists (``DETAILS``), all a resuming run needs, so a file of
        hundreds of thousands of records fits in memory (HD records with 64 faces: about 6 KB each instead of 32)."""
        self.repaired = self.file.repair()
        if self.format == "csv" and self.path.stat().st_size and self._header() in (CSV_HEADER, PER_FACE_HEADER):
            self.header = self._header()  # a file of this version keeps its layout, whatever this run asked for
            self.per_face = self.header == PER_FACE_HEADER
        records, complete = self._read(outline)
        if self.format == "csv" and self.path.stat().st_size == 0:
            self.file.append(self.header)
        elif self.format == "csv" and (self._header() != self.header or not complete):
            self.rewrite(records)  # another layout, or an input's rows torn: the rows that follow must line up
        return records

    def read(self) -> list[Record]:
        """The records of a finished file, read without changing it (a shard to merge, say).

        Raises:
            ValueError: the file ends in a torn record (the run writing it is still going, or crashed: run it again
                to finish it).
        """
        with self.path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    raise TornRecordError(self.path)
        if self.format == "csv" and size:
            self.header = self._header()
            self.per_face = self.header == PER_FACE_HEADER
        records, complete = self._read()
        if not complete:
            raise TornRecordError(self.path)
        return records

    def _header(self) -> str:
        with self.path.open(newline="") as handle:
            return handle.readline()

    def append(self, record: Record) -> None:
        """Write one record as one line, durably."""
        self.file.append(self.line(record))

    def remove(self, keys: set[tuple[str, str]]) -> None:
        """Take the records of ``keys`` out of the file, atomically; JSONL lines are kept byte for byte, one at a
        time, so the file never has to fit in memory."""
        if not keys:
            return
        if self.format == "csv":
            records, _ = self._read()
            self.rewrite([record for record in records if record.key not in keys])
            return
        with self.path.open(encoding="utf-8") as handle:
            self.file.replace(line for line in handle if line.strip() and record_key(line) not in keys)

    def rewrite(self, records: list[Record]) -> None:
        """Replace the file's content with ``records``, atomically."""
        self.write(self.line(record) for record in records)

    def write(self, lines: Iterable[str]) -> None:
        """Replace the file's content with the header (CSV) and ``lines`` (as ``line`` makes them), atomically,
        writing them as they come."""
        header = [self.header] if self.format == "csv" else []
        self.file.replace(itertools.chain(header, lines))

    @staticmethod
    def parse_line(line: str | bytes, wanted: frozenset[str] = ALL_FIELDS) -> Record:
        """The record of one JSONL line, its ``wanted`` fields only (``Record.from_values``)."""
        return Record.from_values(json.loads(line), wanted)

    def line(self, record: Record) -> str:
        """One record as this file writes it: a JSONL line, or its CSV row (rows, one per face)."""
        values = asdict(record)
        if self.format == "jsonl":
            return json.dumps(values, allow_nan=False) + "\n"
        row = {k: (json.dumps(v) if k in LIST_FIELDS and v is not None else v) for k, v in values.items()
               if k not in NESTED}
        top = asdict(record.top_track) if record.top_track else {}
        row |= {f"top_track_{k}": top.get(k) for k in TOP_TRACK}
        if row["error"]:
            row["error"] = " ".join(row["error"].split())  # one record, one line
        if "\n" in row["path"] or "\r" in row["path"]:
            raise ValueError(f"a path with a line break cannot be a CSV record, write JSONL: {row['path']!r}")
        buffer = io.StringIO()
        if not self.per_face:
            csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n").writerow(row)
            return buffer.getvalue()
        writer = csv.DictWriter(buffer, CSV_FIELDS + FACE_FIELDS, lineterminator="\n")
        for face in record.faces or [None]:
            values = [face.frame, *face.box, face.track, face.score] if face else [None] * len(FACE_FIELDS)
            writer.writerow(row | dict(zip(FACE_FIELDS, values, strict=True)))
        return buffer.getvalue()

    def _read(self, outline: bool = False) -> tuple[list[Record], bool]:
        """The records (JSONL and ``outline``: without ``DETAILS``), and whether every input's rows were all there."""
        if self.format == "jsonl":
            with self.path.open(encoding="utf-8") as handle:
                wanted = OUTLINE if outline else ALL_FIELDS
                return [self.parse_line(line, wanted) for line in handle if line.strip()], True
        with self.path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "face_frame" not in rows[0]:
            return [self._from_csv_row(row) for row in rows], True
        grouped: dict[tuple[str, str], list[dict[str, str]]] = {}
        for row in rows:  # one row per face: an input's rows follow each other
            grouped.setdefault((row["path"], row["sha256"]), []).append(row)
        records = [self._from_face_rows(group) for group in grouped.values()]
        whole = [r for r in records if len(r.faces or []) == (r.face_count or 0)]
        return whole, len(whole) == len(records)

    def _from_face_rows(self, rows: list[dict[str, str]]) -> Record:
        record = self._from_csv_row(rows[0])
        faces = tuple(Face(int(r["face_frame"]), tuple(float(r[f"face_{k}"]) for k in ("x0", "y0", "x1", "y1")),
                           int(r["face_track"]), float(r["face_score"])) for r in rows if r["face_frame"])
        return replace(record, faces=faces)

    @staticmethod
    def _from_csv_row(row: dict[str, str]) -> Record:
        def value(name: str, text: str) -> object:
            if name in REQUIRED_TEXT:
                return text
            if text == "":
                return None
            if name in LIST_FIELDS:
                return json.loads(text)
            if name in ("score", "seconds"):
                return float(text)
            if name in ("face_count", "attempts"):
                return int(text)
            return text

        record = Record(**{name: value(name, row.get(name) or "") for name in FIELDS if name not in NESTED})
        if not row.get("top_track_id"):
            return record
        return replace(record, tracks=(Track.from_dict({k: row[f"top_track_{k}"] for k in TOP_TRACK}),))
