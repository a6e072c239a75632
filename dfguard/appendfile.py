"""The one crash-safe append-only text file: batch scoring's results and ``dfguard prepare``'s manifest use it.

Each item (a line, or a few lines that belong together) is written with a single ``write`` to a descriptor opened
with ``O_APPEND``, then ``fsync``-ed. A crash can only leave a torn last line; ``repair`` cuts it off (that item
is done again; a reader of several-line items checks that the last item is whole), so a rerun sees every
finished line exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


class AppendOnlyFile:
    """A text file that grows one whole line at a time, durably."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def repair(self) -> int:
        """Create the file if needed and cut everything after its last newline; returns the bytes cut off."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.touch()
            return 0
        with self.path.open("rb+") as handle:
            data = handle.read()
            keep = data.rfind(b"\n") + 1
            if keep < len(data):
                handle.truncate(keep)
            return len(data) - keep

    def append(self, line: str) -> None:
        """Write whole lines (the text must end with a newline) in one write, and flush them to disk."""
        if not line.endswith("\n"):
            raise ValueError("append takes whole lines, ending with a newline")
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def replace(self, text: str | Iterable[str]) -> None:
        """Replace the whole content atomically (a temporary file, flushed, renamed over this one) with ``text``, or
        with the pieces of text it yields, written as they come."""
        scratch = self.path.with_name(self.path.name + ".rewrite")
        with scratch.open("w") as handle:
            handle.writelines([text] if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, self.path)
