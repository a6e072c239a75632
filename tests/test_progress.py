"""Progress bars: off a terminal each bar writes its final state once; on one it redraws in place."""

from __future__ import annotations

import io

from dfguard import progress
from dfguard.progress import progress_bar


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_off_a_terminal_each_bar_is_one_line_with_its_final_state():
    log = io.StringIO()
    for _ in progress_bar(range(300), desc="videos", file=log, mininterval=0):
        pass
    with progress_bar(total=4, desc="preparing", file=log, mininterval=0) as bar:
        for k in range(4):
            bar.update()
            bar.set_postfix(errors=k)  # each postfix forces a redraw
    for _ in progress_bar(range(10), desc="epoch", file=log, leave=False):
        pass
    lines = log.getvalue().split("\n")
    assert "\r" not in log.getvalue() and lines[-1] == ""
    assert len(lines) == 3
    assert lines[0].startswith("videos: 100%") and "300/300" in lines[0]
    assert lines[1].startswith("preparing: 100%") and "4/4" in lines[1] and "errors=3" in lines[1]


def test_on_a_terminal_the_bar_redraws_in_place():
    screen = Terminal()
    for _ in progress_bar(range(50), desc="videos", file=screen, mininterval=0, miniters=1):
        pass
    assert screen.getvalue().count("\r") > 10 and screen.getvalue().count("\n") == 1


def test_a_long_bar_off_a_terminal_writes_a_line_now_and_then(monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)  # every redraw counts as long enough
    log = io.StringIO()
    with progress_bar(total=3, desc="scoring", file=log, mininterval=0, miniters=1) as bar:
        for _ in range(3):
            bar.update()
        during = log.getvalue().splitlines()
    assert len(during) >= 3 and during[-1].startswith("scoring: 100%")
    final = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(final) == len(during) + 1 and final[-1].startswith("scoring: 100%")
