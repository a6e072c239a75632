"""The README's table of headline numbers, read from ``benchmarks/RESULTS.md``: each number comes from the section a
benchmark wrote, with that section's date, so the README cannot show a figure RESULTS.md no longer holds.

    python -m benchmarks.headlines          # rewrite the table in README.md
    python -m benchmarks.headlines --check  # exit 1 when README.md's table is not what RESULTS.md says

``tests/test_docs.py`` runs the check.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .results import RESULTS

README = RESULTS.parent.parent / "README.md"
BEGIN, END = "<!-- headlines:begin -->", "<!-- headlines:end -->"


@dataclass(frozen=True)
class Section:
    """One section of RESULTS.md: its date, its text and its Markdown tables (each a list of rows, a row a dict
    from column header to cell)."""

    key: str
    date: str
    text: str
    tables: list[list[dict[str, str]]]

    def row(self, first: str, table: int = 0, **cells: str) -> dict[str, str]:
        """The first row of table ``table`` whose first cell starts with ``first`` (and whose ``cells`` match)."""
        for row in self.tables[table]:
            values = list(row.values())
            if values[0].startswith(first) and all(row.get(k.replace("_", " ")) == v for k, v in cells.items()):
                return row
        raise KeyError(f"RESULTS.md section {self.key!r}: no row starting {first!r} in table {table}")

    def rows(self, first: str, table: int = 0) -> list[dict[str, str]]:
        """Every row of table ``table`` whose first cell starts with ``first``."""
        return [row for row in self.tables[table] if next(iter(row.values())).startswith(first)]

    def find(self, pattern: str) -> re.Match:
        """The first match of ``pattern`` in the section's text."""
        match = re.search(pattern, self.text)
        if not match:
            raise KeyError(f"RESULTS.md section {self.key!r}: nothing matches {pattern!r}")
        return match


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """The Markdown tables of ``text``, in order."""
    tables, lines = [], text.splitlines()
    k = 0
    while k < len(lines):
        if lines[k].startswith("|") and k + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[k + 1]):
            header = cells(lines[k])
            k += 2
            rows = []
            while k < len(lines) and lines[k].startswith("|"):
                rows.append(dict(zip(header, cells(lines[k]), strict=False)))
                k += 1
            tables.append(rows)
        else:
            k += 1
    return tables


def cells(line: str) -> list[str]:
    """The cells of a table row, stripped of emphasis."""
    return [cell.strip().replace("**", "") for cell in line.strip().strip("|").split("|")]


def read_section(text: str, key: str) -> Section:
    """The section ``key`` of the RESULTS.md text ``text``."""
    match = re.search(rf"<!-- {re.escape(key)}:begin -->(.*?)<!-- {re.escape(key)}:end -->", text, re.S)
    if not match:
        raise KeyError(f"RESULTS.md has no section {key!r}")
    body = match.group(1)
    day = re.search(r"^Date: (\S+)", body, re.M)
    return Section(key, day.group(1) if day else "", body, markdown_tables(body))


def best_ensemble(section: Section) -> dict[str, str]:
    """The ensemble's row with the highest ratio to the obvious script."""
    return max(section.rows("(c) dfguard Triton ensemble"), key=lambda r: float(r["× obvious script"]))


def pipeline(section: Section) -> str:
    best = best_ensemble(section)
    return (f"ensemble {float(best['× obvious script']):.2f}× the obvious script at {best['in flight']} in flight, "
            f"{best['% of decode limit']} of the decode-bound limit")


def kernels(section: Section) -> str:
    numba = section.row("numba", batch="256")
    return (f"numba at batch 256: {float(numba['× numpy reference']):.0f}× the NumPy reference, "
            f"{numba['% of copy bandwidth']} of memory-copy bandwidth")


def scenes(section: Section) -> str:
    def found(first: str) -> str:
        return section.row(first)["faces found"].split("/")[0]

    def hd_speed(first: str) -> str:
        return section.row(first, table=1)["1920×1080 frames/s"]

    ours = section.row("ours, full range, tiled")
    tiled, mtcnn = "mediapipe, full range, whole frame and", "MTCNN"
    return (f"ours {ours['faces found']} faces (recall {ours['recall']}, {hd_speed('ours, full range, tiled')} "
            f"1080p frames/s); peers: MTCNN on the frame halved {found(mtcnn)} ({hd_speed(mtcnn)}/s), mediapipe on "
            f"tiles {found(tiled)} ({hd_speed(tiled)}/s), mediapipe full range {found('mediapipe, full range')}")


def filmed(section: Section) -> str:
    row = section.row("every 4th sampled frame")
    return (f"recall {row['recall']} with the fine tiles on every 4th frame, {row['windows per frame']} windows "
            "per frame")


def footage(section: Section) -> str:
    covers = section.find(r"covers (\d+) of the (\d+) reference faces \(([\d.]+)%\)")
    agreed = section.find(r"that two references or more find, (\d+) \(([\d.]+)%\)")
    tracks = section.find(r"one counted track: (\d+) of (\d+)")
    return (f"covers {covers.group(3)} % of the faces any reference finds, {agreed.group(2)} % of those two agree "
            f"on; {tracks.group(1)} of {tracks.group(2)} one-person clips give one track")


def real_self_blend(section: Section) -> str:
    full = section.row("full, 3 seeds")
    first = full["self-blend frame AUC"].split()[0]
    return (f"full, 3 seeds: held-out self-blends frame AUC {first}; swaps between real clips video AUC "
            f"{full['swap video AUC'].split()[0]}, pairs ranked right {full['swap pairs ranked right'].split()[0]}; "
            f"held-out reals flagged {full['held-out reals flagged']}")


def perf(section: Section) -> str:
    best = max(section.tables[0], key=lambda r: float(r["videos/s"]))
    return f"{best['videos/s']} videos/s at concurrency {best['concurrency']} (320×240 clips, CPU variant)"


def cross_family(section: Section) -> str:
    unseen = [section.row(f"{v} (tiny)")[c] for v in ("full", "rgb_only", "freq_only")
              for c in ("bilinear (unseen)", "pixel_shuffle (unseen)")]
    return (f"video AUC on unseen synthetic families {min(unseen)}–{max(unseen)} for every variant: this data does "
            "not separate the streams")


def live(section: Section) -> str:
    held = int(section.find(r"\*\*(\d+) stream").group(1))
    row = section.row(str(held))
    return (f"{held} live 720p streams held in real time ({row['window end → answer p50 / p95 (s)']} s window end → "
            f"answer p50 / p95); forged frame → alert {row['forged frame → alert p50 / p95 (s)']} s")


def demo(section: Section) -> str:
    took = section.find(r"(\d+ min \d+ s) wall clock").group(1)
    return f"{took} from a fresh clone, install included"


@dataclass(frozen=True)
class Headline:
    """One row of the README's table: what was measured, the command, and how the number is read."""

    what: str
    command: str
    key: str
    render: Callable[[Section], str]


HEADLINES = (
    Headline("DCT high-pass kernels", "python -m benchmarks.kernels", "kernels-cpu", kernels),
    Headline("faces in scenes like uploads (1-3 people, 360p-4K)", "python -m benchmarks.scenes", "faces-scenes",
             scenes),
    Headline("faces in filmed HD videos", "python -m benchmarks.scenes --filmed", "faces-filmed", filmed),
    Headline("faces in real footage, against mediapipe and MTCNN", "python -m benchmarks.footage DIR",
             "faces-footage", footage),
    Headline("trained from real videos alone", "python -m benchmarks.real_self_blend DIR --out OUT",
             "real-self-blend", real_self_blend),
    Headline("pipeline, small clips (320×240)", "python -m benchmarks.pipeline", "pipeline-cpu", pipeline),
    Headline("pipeline, HD uploads", "python -m benchmarks.pipeline --workload hd", "pipeline-cpu-hd", pipeline),
    Headline("pipeline, real 720p/1080p footage", "python -m benchmarks.pipeline --workload footage --videos DIR",
             "pipeline-cpu-footage", pipeline),
    Headline("`perf_analyzer` sweep", "python -m benchmarks.perf", "perf-analyzer-cpu", perf),
    Headline("live streams (`dfguard watch`, tiny preset)", "python -m benchmarks.live", "live-tiny", live),
    Headline("cross-family generalisation", "python -m benchmarks.cross_family", "cross-family", cross_family),
    Headline("`make demo`", "make demo", "demo-fresh", demo),
)


def table(results: str) -> str:
    """The README's table (between the markers) from the text of RESULTS.md."""
    lines = [BEGIN, "| what | command | measured | date |", "|---|---|---|---|"]
    for headline in HEADLINES:
        section = read_section(results, headline.key)
        lines.append(f"| {headline.what} | `{headline.command}` | {headline.render(section)} | {section.date} |")
    return "\n".join([*lines, END])


def readme_with_table(readme: str, results: str) -> str:
    """``readme`` with its table replaced by the one RESULTS.md gives."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise KeyError(f"README.md has no {BEGIN} … {END} block")
    return pattern.sub(lambda _: table(results), readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check README.md, exit 1 when out of date")
    args = parser.parse_args(argv)
    readme, wanted = README.read_text(), readme_with_table(README.read_text(), RESULTS.read_text())
    if args.check:
        if readme != wanted:
            print("README.md's benchmark table is not what benchmarks/RESULTS.md says: "
                  "run python -m benchmarks.headlines")
            return 1
        return 0
    README.write_text(wanted)
    print(f"wrote the table of {len(HEADLINES)} headlines into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
