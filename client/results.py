"""The results file of ``dfguard score``: one record per input, JSONL or CSV, append-only and crash-safe.

Each record is one line of a ``dfguard.appendfile.AppendOnlyFile``: a crash can only leave a torn last line;
``ResultsFile.open`` cuts it off (that input is scored again), so a rerun sees every finished record exactly once
and skips those inputs.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from dfguard.appendfile import AppendOnlyFile

STATUSES = ("ok", "no_face", "error")


@dataclass(frozen=True)
class Record:
    """One input's outcome. ``score`` is P(fake) (None without faces or on error); ``verdict`` the model's
    (its verdict thresholds); ``frame_index``/``frame_scores``: the frames looked at and their scores (None
    without a face); ``faces``: every face (``frame``, ``box``, ``track``, ``score``), ``tracks``: every track
    (``id``, ``score``, ``faces``, ``first_frame``, ``last_frame``); ``error``: why it failed. A CSV row keeps
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
    faces: list[dict] | None = None
    tracks: list[dict] | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What makes an input the same input on a rerun: its path and its content."""
        return self.path, self.sha256

    def is_flagged(self, flag_at: float) -> bool:
        """The one flagging rule: a score at or above ``flag_at`` (never an input without a score)."""
        return self.score is not None and self.score >= flag_at


    @property
    def top_track(self) -> dict | None:
        """The track with the highest score (None without tracks)."""
        return max(self.tracks or [], key=lambda t: t["score"], default=None)


FIELDS = [f.name for f in fields(Record)]
NESTED = ("faces", "tracks")  # JSONL only: a CSV row has the top track's columns instead
TOP_TRACK = ("id", "score", "faces", "first_frame", "last_frame")
CSV_FIELDS = [f for f in FIELDS if f not in NESTED] + [f"top_track_{k}" for k in TOP_TRACK]
CSV_HEADER = ",".join(CSV_FIELDS) + "\n"
REQUIRED_TEXT = ("path", "sha256", "kind", "status")  # "" stays "" (the hash of a file that could not be read)
LIST_FIELDS = ("frame_index", "frame_scores")


class ResultsFile:
    """``records.jsonl`` or ``records.csv`` (by suffix): read what is there, then append records one by one."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.file = AppendOnlyFile(self.path)
        self.format = "csv" if self.path.suffix.lower() == ".csv" else "jsonl"
        self.repaired = 0  # bytes of a torn last record cut off when opening

    def open(self) -> list[Record]:
        """The records already written (after cutting off a torn last line), ready for appending."""
        self.repaired = self.file.repair()
        records = self._read()
        if self.format == "csv" and self.path.stat().st_size == 0:
            self.file.append(CSV_HEADER)
        elif self.format == "csv" and self._header() != CSV_HEADER:
            self.rewrite(records)  # written by an older version: the rows that follow must match the header
        return records

    def _header(self) -> str:
        with self.path.open(newline="") as handle:
            return handle.readline()

    def append(self, record: Record) -> None:
        """Write one record as one line, durably."""
        self.file.append(self._line(record))

    def rewrite(self, records: list[Record]) -> None:
        """Replace the file's content with ``records``, atomically."""
        header = CSV_HEADER if self.format == "csv" else ""
        self.file.replace(header + "".join(self._line(record) for record in records))

    def _line(self, record: Record) -> str:
        values = asdict(record)
        if self.format == "jsonl":
            return json.dumps(values, allow_nan=False) + "\n"
        row = {k: (json.dumps(v) if k in LIST_FIELDS and v is not None else v) for k, v in values.items()
               if k not in NESTED}
        top = record.top_track or {}
        row |= {f"top_track_{k}": top.get(k) for k in TOP_TRACK}
        if row["error"]:
            row["error"] = " ".join(row["error"].split())  # one record, one line
        if "\n" in row["path"] or "\r" in row["path"]:
            raise ValueError(f"a path with a line break cannot be a CSV record, write JSONL: {row['path']!r}")
        buffer = io.StringIO()
        csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n").writerow(row)
        return buffer.getvalue()

    def _read(self) -> list[Record]:
        if self.format == "jsonl":
            lines = self.path.read_text().splitlines()
            # keys of older versions (a stored ``flagged``) are dropped: a record is what this version writes
            return [Record(**{k: v for k, v in json.loads(line).items() if k in FIELDS})
                    for line in lines if line.strip()]
        with self.path.open(newline="") as handle:
            return [self._from_csv_row(row) for row in csv.DictReader(handle)]

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
        top = {k: (float if k == "score" else int)(row[f"top_track_{k}"]) for k in TOP_TRACK}
        return replace(record, tracks=[top])
