"""Progress bars that read well wherever the output goes.

On a terminal a bar redraws in place, sized to the terminal (so a long postfix never wraps into a new line per
refresh). Anywhere else (a log file, a pipe to ``tee``, CI, a Kubernetes Job) redraws would pile up as lines, so
a bar prints its final state once when it closes, and a long one a line every ``LOG_EVERY`` seconds before
that, so a log still shows that a long job is moving; bars made with ``leave=False`` print nothing there.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

LOG_EVERY = 60.0  # seconds between the lines of a long bar off a terminal


class Discard:
    """A text stream that drops what it is given (tqdm's own redraws, off a terminal)."""

    def write(self, text: str) -> int:
        """Drop ``text``."""
        return len(text)

    def flush(self) -> None:
        """Nothing to flush."""


class ProgressBar(tqdm):
    """``tqdm`` that, off a terminal, writes whole lines: now and then while it runs, and its final state once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        stream = kwargs.pop("file", None) or sys.stderr
        self.lines_to = None if stream.isatty() else stream
        self.last_line = time.monotonic()
        kwargs.setdefault("dynamic_ncols", True)
        super().__init__(*args, file=Discard() if self.lines_to else stream, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool | None:
        """Redraw on a terminal; elsewhere write a line when ``LOG_EVERY`` seconds have passed since the last."""
        if getattr(self, "lines_to", None) is None:
            return super().display(msg, pos)
        if time.monotonic() - self.last_line >= LOG_EVERY and not self.disable and self.leave:
            self.write_line()
        return True

    def write_line(self) -> None:
        """Write the bar's state as one line to the stream it was given."""
        self.last_line = time.monotonic()
        self.lines_to.write(str(self) + "\n")
        self.lines_to.flush()

    def close(self) -> None:
        """Close the bar; off a terminal, write its final state as one line (``leave=False`` bars: nothing)."""
        stream, final = getattr(self, "lines_to", None), None
        if stream is not None and not self.disable and self.leave:
            final = str(self)
        self.lines_to = None  # close runs again from __del__; and its own redraw goes to the discarding stream
        super().close()
        if final is not None:
            stream.write(final + "\n")
            stream.flush()


def progress_bar(iterable: Any = None, **kwargs: Any) -> ProgressBar:
    """A progress bar over ``iterable`` (or updated by hand, with ``total``); ``tqdm``'s options."""
    return ProgressBar(iterable, **kwargs)
