"""Progress bars that read well wherever the output goes.

On a terminal a bar redraws in place, sized to the terminal (so a long postfix never wraps into a new line per
refresh). Anywhere else (a log file, a pipe to ``tee``, CI) redraws would pile up as lines, so each bar prints
one line, its final state, when it closes; bars made with ``leave=False`` print nothing there.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from tqdm import tqdm


class ProgressBar(tqdm):
    """``tqdm`` that, off a terminal, draws only its final state, once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        stream = kwargs.pop("file", None) or sys.stderr
        self.final_line_to = None if stream.isatty() else stream
        kwargs.setdefault("dynamic_ncols", True)
        super().__init__(*args, file=io.StringIO() if self.final_line_to else stream, **kwargs)

    def close(self) -> None:
        """Close the bar; off a terminal, write its final state as one line (``leave=False`` bars: nothing)."""
        stream, self.final_line_to = getattr(self, "final_line_to", None), None  # close runs again from __del__
        final = str(self) if stream is not None and not self.disable and self.leave else None
        super().close()
        if final is not None:
            stream.write(final + "\n")
            stream.flush()


def progress_bar(iterable: Any = None, **kwargs: Any) -> ProgressBar:
    """A progress bar over ``iterable`` (or updated by hand, with ``total``); ``tqdm``'s options."""
    return ProgressBar(iterable, **kwargs)
