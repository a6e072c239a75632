"""Video lists of the data sets researchers use, parsed from their real on-disk layouts.

Every loader returns ``VideoRecord``s (path, label with 1 = fake, split, manipulation method, video id) and
raises ``DatasetError`` naming the file and what was expected when something is missing or malformed.

* FaceForensics++: ``original_sequences/youtube/<c>/videos/NNN.mp4`` and
  ``manipulated_sequences/<Method>/<c>/videos/NNN_MMM.mp4`` with ``c`` in raw/c23/c40; the official split files
  (``train.json``/``val.json``/``test.json``: lists of id pairs) decide the splits: pair ``[a, b]`` brings the
  real videos ``a`` and ``b`` and the fakes ``a_b`` and ``b_a`` of every method. Video id = the path relative to
  the root, which includes the method (DeepfakeBench keys fakes by the bare name and mixes methods up).
* Celeb-DF v2: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and ``List_of_testing_videos.txt``
  (``1 path`` = real, ``0 path`` = fake); the listed videos are the test split, every other video is train.
* DFDC: ``metadata.json`` per part (``{"x.mp4": {"label": "FAKE"|"REAL", "split": ..., "original": ...}}``).
* CSV: ``path,label[,split][,...]`` with a header; ``label`` 0/1 or real/fake; paths relative to the CSV. Without a
  split column, the videos are split by group (below).
* A folder of videos (``load_folder``): every video file under it, all real unless told otherwise (what
  ``--fakes self-blend`` trains on), split by group.

Splitting by group (``split_by_group``): videos of one group always share a split, so a person (or a clip and its
copies) never sits in train and test at once. The group is what ``--group REGEX`` matches in the video's path,
else a person id the name tells (VoxCeleb's ``id00012``, MEAD's ``M003``/``W015``), else the clip: its path
without the extension and without a trailing copy hash (``2.mp4`` and ``2_83b19e89.mp4`` are one clip).
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
FFPP_COMPRESSIONS = ("raw", "c23", "c40")
CELEBDF_FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".3gp",
                            ".wmv"})
SPLIT_SHARES = (("test", 0.15), ("val", 0.15))  # the rest is train
# person ids that common data sets put in their file names: VoxCeleb speakers (id00012), MEAD actors (M003, W015)
PERSON_ID = re.compile(r"(?<![A-Za-z0-9])(id\d{5,}|[MW]\d{3})(?![A-Za-z0-9])")
COPY_HASH = re.compile(r"_(?=\d*[a-f])[0-9a-f]{8,}$")  # a copy of a clip named after its content hash (a letter in it)


class DatasetError(ValueError):
    """A data set file is missing or not what its layout says it should be."""


@dataclass(frozen=True)
class VideoRecord:
    """One video: absolute ``path``, ``label`` (1 = fake), ``split``, manipulation ``method`` ("real" for
    pristine videos) and ``video_id`` (unique within the data set)."""

    path: Path
    label: int
    split: str
    method: str
    video_id: str


def load_faceforensics(root: Path, split_files: dict[str, Path], *, compression: str = "c23",
                       methods: Iterable[str] = FFPP_METHODS) -> list[VideoRecord]:
    """FaceForensics++ videos of the given splits (``{"train": .../train.json, ...}``)."""
    root = Path(root)
    if compression not in FFPP_COMPRESSIONS:
        raise DatasetError(f"FaceForensics++ compression must be one of {FFPP_COMPRESSIONS}, got {compression!r}")
    methods = tuple(methods)
    unknown = set(methods) - set(FFPP_METHODS)
    if unknown:
        raise DatasetError(f"unknown FaceForensics++ methods {sorted(unknown)}; known: {FFPP_METHODS}")
    folders = {"real": root / "original_sequences" / "youtube" / compression / "videos"}
    folders |= {m: root / "manipulated_sequences" / m / compression / "videos" for m in methods}
    for method, folder in folders.items():
        if not folder.is_dir():
            raise DatasetError(f"FaceForensics++ {method} videos not found: expected the folder {folder}")
    records = []
    for split, split_file in split_files.items():
        for a, b in _read_ffpp_pairs(Path(split_file)):
            names = [("real", a), ("real", b)] + [(m, f"{x}_{y}") for m in methods for x, y in ((a, b), (b, a))]
            for method, name in names:
                path = folders[method] / f"{name}.mp4"
                records.append(VideoRecord(path, int(method != "real"), split, method,
                                           path.relative_to(root).as_posix()))
    return _require_files(records, "FaceForensics++")


def _read_ffpp_pairs(path: Path) -> list[tuple[str, str]]:
    """The id pairs of an official FaceForensics++ split file."""
    data = _read_json(path, "a FaceForensics++ split file: a JSON list of [id, id] pairs")
    if not isinstance(data, list) or not all(isinstance(p, list) and len(p) == 2 for p in data):
        raise DatasetError(f"{path}: expected a JSON list of [id, id] pairs (FaceForensics++ split file)")
    return [(str(a), str(b)) for a, b in data]


def load_celebdf(root: Path) -> list[VideoRecord]:
    """Celeb-DF v2: the videos of ``List_of_testing_videos.txt`` as the test split, the rest as train."""
    root = Path(root)
    listing = root / "List_of_testing_videos.txt"
    if not listing.is_file():
        raise DatasetError(f"Celeb-DF: expected the test list {listing}")
    test: dict[str, int] = {}
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise DatasetError(f"{listing}:{number}: expected '<1 real | 0 fake> <folder/video.mp4>', got {line!r}")
        test[parts[1]] = 1 - int(parts[0])  # the list writes 1 for real; our label 1 means fake
    records = []
    for folder, label in CELEBDF_FOLDERS.items():
        for path in sorted((root / folder).glob("*.mp4")):
            video_id = path.relative_to(root).as_posix()
            split = "test" if video_id in test else "train"
            method = "real" if label == 0 else "Celeb-synthesis"
            records.append(VideoRecord(path, label, split, method, video_id))
    found = {r.video_id for r in records}
    missing = [video_id for video_id in test if video_id not in found]
    if missing:
        raise DatasetError(f"{listing}: {len(missing)} listed video(s) not found under {root}, e.g. {missing[:3]}")
    wrong = [r.video_id for r in records if r.split == "test" and test[r.video_id] != r.label]
    if wrong:
        raise DatasetError(f"{listing}: labels contradict the folders for {wrong[:3]}")
    return records


def load_dfdc(root: Path) -> list[VideoRecord]:
    """DFDC: every ``metadata.json`` under ``root`` (one per part folder)."""
    root = Path(root)
    metadata_files = sorted(root.rglob("metadata.json"))
    if not metadata_files:
        raise DatasetError(f"DFDC: no metadata.json found under {root}")
    records = []
    for metadata in metadata_files:
        entries = _read_json(metadata, "a DFDC metadata.json: {video: {label: FAKE|REAL, split: ...}}")
        if not isinstance(entries, dict):
            raise DatasetError(f"{metadata}: expected an object mapping video names to their labels")
        for name, entry in entries.items():
            label = entry.get("label") if isinstance(entry, dict) else None
            if label not in ("FAKE", "REAL"):
                raise DatasetError(f"{metadata}: video {name!r} needs a label FAKE or REAL, got {label!r}")
            path = metadata.parent / name
            records.append(VideoRecord(path, int(label == "FAKE"), str(entry.get("split", "train")),
                                       "dfdc" if label == "FAKE" else "real", path.relative_to(root).as_posix()))
    return _require_files(records, "DFDC")


def load_csv(path: Path, *, group: str | None = None, seed: int = 0) -> list[VideoRecord]:
    """A CSV with a header and columns ``path,label[,split][,method or family]``; without splits, the videos are
    split by group (``split_by_group``: ``group`` a regex, ``seed`` the draw)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"expected a CSV file at {path}")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: the header must name at least the columns path,label "
                               f"(got {reader.fieldnames})")
        rows = list(reader)
    records = _require_files([_csv_record(path, number, row) for number, row in enumerate(rows, 2)], str(path))
    if any((row.get("split") or "").strip() for row in rows):
        return records
    return split_by_group(records, group=group, seed=seed)


def load_folder(root: Path, *, label: int = 0, group: str | None = None, seed: int = 0) -> list[VideoRecord]:
    """Every video file under ``root`` (by its suffix, ``VIDEO_SUFFIXES``), labelled ``label`` (0, real: a folder
    of real videos to train on with self-blended fakes), split by group (``split_by_group``)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"expected a folder of videos at {root}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not paths:
        raise DatasetError(f"no video files under {root} (looked for {', '.join(sorted(VIDEO_SUFFIXES))})")
    method = "fake" if label else "real"
    records = [VideoRecord(p.resolve(), label, "train", method, p.relative_to(root).as_posix()) for p in paths]
    return split_by_group(records, group=group, seed=seed)


def video_group(video_id: str, group: str | None = None) -> str:
    """The group a video belongs to: the first match of the regex ``group`` in its id (the match's first
    group when it has one), else a person id its name tells (``PERSON_ID``), else its clip (the id without the
    extension and a trailing copy hash)."""
    if group:
        found = re.search(group, video_id)
        if found:
            return found.group(1) if found.re.groups else found.group(0)
    person = PERSON_ID.search(video_id)
    if person:
        return person.group(1)
    return COPY_HASH.sub("", video_id.rsplit(".", 1)[0] if "." in Path(video_id).name else video_id)


def split_by_group(records: list[VideoRecord], *, group: str | None = None, seed: int = 0) -> list[VideoRecord]:
    """The records with their splits: the groups (``video_group``) shuffled with ``seed`` and dealt out whole,
    first to test and val until each holds its share of the videos (``SPLIT_SHARES``; at least one group each
    when there are three or more), the rest to train."""
    members: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        members.setdefault(video_group(record.video_id, group), []).append(index)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    split_of: dict[str, str] = {}
    filled = dict.fromkeys((name for name, _ in SPLIT_SHARES), 0)
    for key in order:
        wanted = [name for name, share in SPLIT_SHARES
                  if filled[name] < max(round(share * len(records)), int(len(members) >= 3))]
        split_of[key] = wanted[0] if wanted else "train"
        if wanted:
            filled[wanted[0]] += len(members[key])
    return [VideoRecord(r.path, r.label, split_of[video_group(r.video_id, group)], r.method, r.video_id)
            for r in records]


def _csv_record(csv_path: Path, number: int, row: dict[str, str]) -> VideoRecord:
    label_text = (row["label"] or "").strip().lower()
    labels = {"0": 0, "1": 1, "real": 0, "fake": 1}
    if label_text not in labels:
        raise DatasetError(f"{csv_path}:{number}: label must be 0/1 or real/fake, got {row['label']!r}")
    label = labels[label_text]
    relative = (row["path"] or "").strip()
    if not relative:
        raise DatasetError(f"{csv_path}:{number}: empty path")
    method = row.get("method") or row.get("family") or ("fake" if label else "real")
    return VideoRecord((csv_path.parent / relative).resolve(), label, row.get("split") or "train", method, relative)


def _read_json(path: Path, expected: str) -> object:
    if not path.is_file():
        raise DatasetError(f"expected {expected} at {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error}); expected {expected}") from error


def _require_files(records: list[VideoRecord], name: str) -> list[VideoRecord]:
    """Fail, naming a few, when listed videos are not on disk."""
    missing = [r.path for r in records if not r.path.is_file()]
    if missing:
        raise DatasetError(f"{name}: {len(missing)} of {len(records)} videos are missing, e.g. "
                           f"{', '.join(str(p) for p in missing[:3])}")
    return records


LOADERS: dict[str, Callable[..., list[VideoRecord]]] = {
    "faceforensics": load_faceforensics,
    "celebdf": load_celebdf,
    "dfdc": load_dfdc,
    "csv": load_csv,
    "folder": load_folder,
}
