"""Batch scoring in N independent jobs: ``--shard I/N`` keeps the I-th of N slices of the inputs, chosen by a stable
hash of each input's absolute path (the same on every machine and run, whatever the order or the other inputs), and
``merge_shards`` combines the jobs' results files into one, checking that every input is there exactly once.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .results import Record, ResultsFile, TornRecordError

SHOWN = 3  # inputs named in a merge error, per kind of problem


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` → ``(I, N)`` with ``0 <= I < N`` (a Kubernetes Indexed Job's ``$JOB_COMPLETION_INDEX/N``)."""
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        raise ValueError(f"--shard takes I/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return shard


def shard_of(path: Path, count: int) -> int:
    """Which of ``count`` shards the input at ``path`` (absolute, as in its record) belongs to."""
    digest = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select_shard(paths: list[Path], index: int, count: int) -> list[Path]:
    """The inputs of shard ``index`` of ``count``, in their order (paths made absolute first, like records)."""
    return [path for path in (p.resolve() for p in paths) if shard_of(path, count) == index]


@dataclass(frozen=True)
class Entry:
    """Where one record of a shard is: its JSONL line's offset and length in ``shard``, or (CSV) the record."""

    shard: Path
    status: str
    offset: int = 0
    length: int = 0
    record: Record | None = None

    def line(self, out: ResultsFile, shard: BinaryIO) -> str:
        """The record as a line (or rows) of ``out``, read from ``shard`` (this entry's file, open): a JSONL line is
        copied byte for byte into a JSONL file."""
        if self.record is not None:
            return out.line(self.record)
        shard.seek(self.offset)
        text = shard.read(self.length).decode("utf-8")
        return text if out.format == "jsonl" else out.line(ResultsFile.parse_line(text))


def shard_entries(shard: Path) -> Iterator[tuple[str, Entry]]:
    """``(path, entry)`` for every record of a finished shard file, read without changing it; JSONL line by line,
    so only offsets are held (a merge of millions of records fits in memory).

    Raises:
        ValueError: the file ends in a torn record (its run is still going or crashed: rerun it to finish).
    """
    results = ResultsFile(shard)
    if results.format == "csv":
        for record in results.read():
            yield record.path, Entry(shard, record.status, record=record)
        return
    with shard.open("rb") as handle:
        offset = 0
        for raw in handle:
            if not raw.endswith(b"\n"):
                raise TornRecordError(shard)
            if raw.strip():
                values = json.loads(raw)
                yield values["path"], Entry(shard, values["status"], offset, len(raw))
            offset += len(raw)


def merge_shards(paths: list[Path], shard_files: list[Path], out: Path, *, per_face: bool = False) -> dict[str, int]:
    """Write into ``out`` (atomically, in the order of ``paths``) the one record of each input found in the
    ``shard_files``, which are only read; returns the count of records by status.

    Raises:
        ValueError: a shard file is torn (its job is still running or crashed: rerun it to finish), or an input
            has no record, or more than one, or a record is of no input given; the first few of each are named.
    """
    wanted = list(dict.fromkeys(str(path.resolve()) for path in paths))
    found: dict[str, list[Entry]] = {}
    for shard in shard_files:
        for path, entry in shard_entries(shard):
            found.setdefault(path, []).append(entry)
    missing = [path for path in wanted if path not in found]
    doubled = [path for path in wanted if len(found.get(path, ())) > 1]
    extra = sorted(set(found) - set(wanted))
    problems = []
    if missing:
        problems.append(f"{len(missing)} inputs have no record (is a shard missing or unfinished?), e.g. "
                        f"{', '.join(missing[:SHOWN])}")
    if doubled:
        where = "; ".join(f"{path} in {', '.join(str(e.shard) for e in found[path])}" for path in doubled[:SHOWN])
        problems.append(f"{len(doubled)} inputs have more than one record (shards of different N, or overlapping "
                        f"files?), e.g. {where}")
    if extra:
        problems.append(f"{len(extra)} records are of no input given (another manifest?), e.g. "
                        f"{', '.join(extra[:SHOWN])}")
    if problems:
        raise ValueError(f"cannot merge {len(shard_files)} shard files into {out}: " + "; ".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = ResultsFile(out, per_face=per_face)
    chosen = [found[path][0] for path in wanted]
    with ExitStack() as stack:
        handles = {shard: stack.enter_context(shard.open("rb")) for shard in dict.fromkeys(shard_files)}
        merged.write(entry.line(merged, handles[entry.shard]) for entry in chosen)
    return dict(Counter(entry.status for entry in chosen))
