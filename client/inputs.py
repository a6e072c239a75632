"""What ``dfguard score`` scores: files, folders (recursive, by extension), globs and manifests → file paths."""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterable
from pathlib import Path

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                              ".ts", ".3gp"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
MANIFEST_EXTENSIONS = frozenset({".txt", ".lst", ".csv"})


def media_kind(path: Path) -> str | None:
    """``"video"`` or ``"image"`` by the file's extension, None for anything else."""
    suffix = path.suffix.lower()
    return "video" if suffix in VIDEO_EXTENSIONS else "image" if suffix in IMAGE_EXTENSIONS else None


def read_manifest(path: Path) -> list[Path]:
    """Paths listed in a manifest: ``.csv`` with a ``path`` column, or ``.txt``/``.lst`` with one path per line
    (blank lines and ``#`` comments skipped). Relative paths are relative to the manifest's folder."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if "path" not in (reader.fieldnames or []):
                raise ValueError(f"{path}: a CSV manifest needs a 'path' column, found {reader.fieldnames}")
            listed = [row["path"] for row in reader if row["path"].strip()]
    else:
        listed = [line.strip() for line in path.read_text().splitlines()]
        listed = [line for line in listed if line and not line.startswith("#")]
    return [p if p.is_absolute() else path.parent / p for p in map(Path, listed)]


def collect_inputs(specs: Iterable[str], kinds: tuple[str, ...] = ("video", "image")) -> list[Path]:
    """Expand each spec, in order, without duplicates: a folder → its media files (recursive, sorted), a glob →
    its matches, a manifest (``.csv``/``.txt``/``.lst``) → its entries, a file → itself.

    Raises:
        FileNotFoundError: a spec matches nothing (a typo should not pass as "0 videos scored").
    """
    found: dict[Path, None] = {}
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and media_kind(p) in kinds)
        elif path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS:
            matches = read_manifest(path)
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(spec):
            matches = sorted(p for p in map(Path, glob.glob(spec, recursive=True))
                             if p.is_file() and media_kind(p) in kinds)
        else:
            matches = []
        if not matches:
            raise FileNotFoundError(f"{spec}: no such file, or no {' or '.join(kinds)} files in it")
        found.update(dict.fromkeys(matches))
    return list(found)
