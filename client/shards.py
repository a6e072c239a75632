"""Batch scoring in N independent jobs: ``--shard I/N`` keeps the I-th of N slices of the inputs, chosen by a stable
hash of each input's absolute path (the same on every machine and run, whatever the order or the other inputs), and
``merge_shards`` combines the jobs' results files into one, checking that every input is there exactly once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .results import Record, ResultsFile

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


def merge_shards(paths: list[Path], shard_files: list[Path], out: Path, *, per_face: bool = False) -> list[Record]:
    """Write into ``out`` (atomically, in the order of ``paths``) the one record of each input found in the
    ``shard_files``, and return them; the shard files are only read.

    Raises:
        ValueError: a shard file is torn (its job is still running or crashed: rerun it to finish), or an input
            has no record, or more than one, or a record is of no input given; the first few of each are named.
    """
    wanted = list(dict.fromkeys(str(path.resolve()) for path in paths))
    found: dict[str, list[tuple[Path, Record]]] = {}
    for shard in shard_files:
        for record in ResultsFile(shard).read():
            found.setdefault(record.path, []).append((shard, record))
    missing = [path for path in wanted if path not in found]
    doubled = [path for path in wanted if len(found.get(path, ())) > 1]
    extra = sorted(set(found) - set(wanted))
    problems = []
    if missing:
        problems.append(f"{len(missing)} inputs have no record (is a shard missing or unfinished?), e.g. "
                        f"{', '.join(missing[:SHOWN])}")
    if doubled:
        where = "; ".join(f"{path} in {', '.join(str(s) for s, _ in found[path])}" for path in doubled[:SHOWN])
        problems.append(f"{len(doubled)} inputs have more than one record (shards of different N, or overlapping "
                        f"files?), e.g. {where}")
    if extra:
        problems.append(f"{len(extra)} records are of no input given (another manifest?), e.g. "
                        f"{', '.join(extra[:SHOWN])}")
    if problems:
        raise ValueError(f"cannot merge {len(shard_files)} shard files into {out}: " + "; ".join(problems))
    records = [found[path][0][1] for path in wanted]
    out.parent.mkdir(parents=True, exist_ok=True)
    ResultsFile(out, per_face=per_face).rewrite(records)
    return records
