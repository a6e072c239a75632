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


class Formatter(argparse.HelpFormatter):
    """argparse's formatter at a fixed width, with an option's value after each of its names (``-o OUT, --out
    OUT``) as before Python 3.13, so the reference reads the same on every Python the project supports."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=WIDTH, max_help_position=32)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        value = self._format_args(action, self._get_default_metavar_for_optional(action))
        return ", ".join(f"{option} {value}" for option in action.option_strings)


def command_help(name: str) -> str:
    """``dfguard NAME --help`` as a user sees it, at the fixed width."""
    cmd = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"dfguard {name}", description=cmd.help, formatter_class=Formatter,
                                     allow_abbrev=False)
    add_command_arguments(parser, cmd)
    return parser.format_help()


def reference() -> str:
    """``docs/cli.md``: ``dfguard --help`` and every command's help."""
    top = build_parser([])
    top.formatter_class = Formatter
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
