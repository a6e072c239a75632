"""dfguard.appendfile: whole lines only, a torn tail cut off, an atomic replace."""

from __future__ import annotations

import pytest

from dfguard.appendfile import AppendOnlyFile


def test_a_torn_last_line_is_cut_and_whole_lines_stay(tmp_path):
    log = AppendOnlyFile(tmp_path / "sub" / "log.jsonl")
    assert log.repair() == 0 and log.path.read_text() == ""
    log.append('{"a": 1}\n')
    with log.path.open("a") as handle:  # a crash in the middle of the next write
        handle.write('{"b": ')
    assert log.repair() == len('{"b": ')
    log.append('{"c": 3}\n')
    assert log.path.read_text().splitlines() == ['{"a": 1}', '{"c": 3}']


@pytest.mark.parametrize("line", ["no newline", "one\nand a half", ""])
def test_only_whole_lines_are_appended(tmp_path, line):
    log = AppendOnlyFile(tmp_path / "log.txt")
    with pytest.raises(ValueError, match="whole lines"):
        log.append(line)
    log.append("two\nlines\n")  # the rows of one item, in one write
    assert log.path.read_text() == "two\nlines\n"


def test_replace_swaps_the_content_at_once(tmp_path):
    log = AppendOnlyFile(tmp_path / "log.txt")
    log.append("old\n")
    log.replace("new 1\nnew 2\n")
    assert log.path.read_text() == "new 1\nnew 2\n" and list(tmp_path.iterdir()) == [log.path]
