"""The CLI reference, generated from the parsers: ``python -m dfguard.cli_reference`` rewrites ``docs/cli.md``
and the command table in ``README.md`` (between ``<!-- cli:begin -->`` and ``<!-- cli:end -->``);
``tests/test_docs.py`` fails when either differs from what the parsers say."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfguard.cli import COMMANDS, add_command_arguments, build_parser

WIDTH = 110  # help text wrapped at a fixed width, so the file does not depend on the terminal
BEGIN, END = "<!-- cli:begin -->", "<!-- cli:end -->"


def formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter at the reference's fixed width."""
    return argparse.HelpFormatter(prog, width=WIDTH, max_help_position=32)


def command_help(name: str) -> str:
    """``dfguard NAME --help`` as a user sees it, at the fixed width."""
    cmd = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"dfguard {name}", description=cmd.help, formatter_class=formatter,
                                     allow_abbrev=False)
    add_command_arguments(parser, cmd)
    return parser.format_help()


def reference() -> str:
    """``docs/cli.md``: ``dfguard --help`` and every command's help."""
    top = build_parser([])
    top.formatter_class = formatter
    lines = ["# `dfguard` command reference", "",
             "Generated from the parsers by `python -m dfguard.cli_reference`; do not edit by hand.", "",
             "```text", top.format_help().rstrip(), "```", ""]
    for name in COMMANDS:
        lines += [f"## `dfguard {name}`", "", "```text", command_help(name).rstrip(), "```", ""]
    return "\n".join(lines)


def readme_table() -> str:
    """The README's table of commands, each linked to its section of ``docs/cli.md``."""
    rows = [f"| [`dfguard {name}`](docs/cli.md#dfguard-{name}) | {cmd.help} |" for name, cmd in COMMANDS.items()]
    return "\n".join(["| command | what it does |", "|---|---|", *rows])


def with_readme_table(readme: str) -> str:
    """``readme`` with the command table between its markers replaced by ``readme_table``."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + readme_table() + "\n" + readme[end:]


def main(root: Path = Path(".")) -> int:
    """Rewrite ``docs/cli.md`` and the README's command table under ``root``."""
    (root / "docs" / "cli.md").write_text(reference())
    readme = root / "README.md"
    readme.write_text(with_readme_table(readme.read_text()))
    print(f"wrote {root / 'docs' / 'cli.md'} and the command table of {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")))
