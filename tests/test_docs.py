"""The README and the guides in docs/ as a user reads them: every code block either runs here (and does, below) or
says why not, their links stay inside the repository, the README fits a screen or two, and what it generates from
elsewhere (the CLI table, the measured numbers) is current."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib.cbook
import numpy as np
import pytest
from helpers import REPO

from dfguard.cli_reference import reference, with_readme_table
from dfguard.image import read_image

README = REPO / "README.md"
# the README and what was split out of it: their snippets run or say why not
GUIDES = (README, *(REPO / "docs" / f"{name}.md" for name in ("guide", "training", "operations", "contributing")))
LINKED = (*GUIDES, REPO / "docs" / "architecture.md", REPO / "docs" / "papers.md")
README_LINES = 250
MARKER = re.compile(r"^\s*<!-- snippet: (run|skip) \((.+)\) -->$")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
LINK = re.compile(r"\]\(([^)\s]+)\)")
GRACE_HOPPER = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@dataclass(frozen=True)
class Block:
    """A fenced code block of a document: its language, code (dedented), where it is, and its marker (or None)."""

    language: str
    code: str
    line: int
    marker: tuple[str, str] | None
    document: str = ""


def code_blocks(text: str, document: str = "") -> list[Block]:
    """Every fenced code block (with or without a language), with the ``<!-- snippet: … -->`` marker on the line
    before it, if any."""
    lines, blocks, k = text.split("\n"), [], 0
    while k < len(lines):
        opening = FENCE.match(lines[k])
        if not opening:
            k += 1
            continue
        end = next(j for j in range(k + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[j] for j in range(k - 1, -1, -1) if lines[j].strip()), "")
        found = MARKER.match(before)
        blocks.append(Block(opening.group(2), textwrap.dedent("\n".join(lines[k + 1:end])), k + 1,
                            (found.group(1), found.group(2)) if found else None, document))
        k = end + 1
    return blocks


# each block marked ``run`` is found by a piece of its code and run by one test below
RUN_BY = {"dct_highpass(faces_uint8": "test_the_kernel_and_face_snippets_run",
          "find_faces(frames": "test_the_kernel_and_face_snippets_run",
          "with DeepfakeClient(": "test_the_client_snippets_run_against_a_server",
          "AsyncDeepfakeClient(": "test_the_client_snippets_run_against_a_server",
          "client.stream(": "test_the_client_snippets_run_against_a_server",
          "dfguard synth data/videos": "test_the_training_snippet_runs"}


def all_blocks() -> list[Block]:
    """The code blocks of every guide."""
    return [b for path in GUIDES for b in code_blocks(path.read_text(), path.relative_to(REPO).as_posix())]


def runnable(containing: str) -> Block:
    """The one block marked ``run``, in any guide, whose code contains ``containing``."""
    (block,) = [b for b in all_blocks() if b.marker and b.marker[0] == "run" and containing in b.code]
    return block


def test_every_code_block_runs_here_or_says_why_not():
    blocks = all_blocks()
    assert len(blocks) > 10
    unmarked = [f"{b.document}:{b.line}" for b in blocks if b.marker is None and b.language != "mermaid"]
    assert not unmarked, f"code blocks without a <!-- snippet: run|skip (why) --> line before: {unmarked}"
    run = [b for b in blocks if b.marker and b.marker[0] == "run"]
    untested = [f"{b.document}:{b.line}" for b in run if sum(key in b.code for key in RUN_BY) != 1]
    assert not untested, f"blocks marked run that no test runs (add them to RUN_BY): {untested}"
    assert len(run) == len(RUN_BY)


def test_every_link_points_inside_the_repository():
    for document in LINKED:
        text = document.read_text()
        assert "](http" not in text  # (nothing in the repository names what lies outside it: test_package)
        for target in LINK.findall(text):
            path = (document.parent / target.split("#")[0]).resolve()
            assert target.split("#")[0] and REPO in path.parents, f"{document.name} links outside: {target}"
            assert path.exists(), f"{document.name} links to {target}, which is not in the repository"


def test_the_readme_fits_a_screen_and_its_numbers_are_those_of_results():
    """The README stays short (the rest lives in docs/), and its table of measured numbers is what
    benchmarks/RESULTS.md holds, each with the date it was measured (``benchmarks/headlines.py``)."""
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.headlines import readme_with_table
        from benchmarks.results import RESULTS
    finally:
        sys.path.remove(str(REPO))
    readme = README.read_text()
    assert len(readme.splitlines()) <= README_LINES
    assert readme_with_table(readme, RESULTS.read_text()) == readme, "run: python -m benchmarks.headlines"
    prose = re.sub(re.escape("<!-- headlines:begin -->") + ".*?" + re.escape("<!-- headlines:end -->"), "", readme,
                   flags=re.S)
    sources = RESULTS.read_text() + (REPO / "docs" / "papers.md").read_text()
    for number in re.findall(r"(\d+\.\d+) ?%", prose):  # a measured percentage in the prose: measured somewhere
        as_fraction = f"{float(number) / 100:.3f}"
        assert number in sources or as_fraction in sources, (
            f"the README says {number} %, which neither RESULTS.md nor docs/papers.md holds")
    changed = re.sub(r"^(\| numba \| 256 \|[^|]+\|[^|]+\| )[\d.]+", r"\g<1>12.0", RESULTS.read_text(), flags=re.M)
    assert "12× the NumPy reference" in readme_with_table(readme, changed)  # a new measurement changes the README


def test_the_cli_reference_is_what_the_parsers_say():
    hint = "run: python -m dfguard.cli_reference"
    assert (REPO / "docs" / "cli.md").read_text() == reference(), hint
    readme = README.read_text()
    assert with_readme_table(readme) == readme, hint
    for name in ("explain", "calibrate", "score", "demo"):
        assert f"(docs/cli.md#dfguard-{name})" in readme


def test_the_kernel_and_face_snippets_run():
    photo = read_image(GRACE_HOPPER)
    faces_uint8 = np.stack([photo[:256, 100:356], photo[200:456, 150:406]])
    namespace: dict = {"faces_uint8": faces_uint8}
    exec(runnable("dct_highpass(faces_uint8").code, namespace)
    assert namespace["hp"].shape == (2, 256, 256) and namespace["hp"].dtype == np.float32
    assert namespace["vec"].shape == (2, 128)

    namespace = {"frames": [photo, photo[:, ::-1].copy()]}
    exec(runnable("find_faces(frames").code, namespace)
    found, crops = namespace["found"], namespace["crops"]
    assert (np.bincount(found.frame, minlength=2) == 1).all()  # Grace Hopper, in each frame
    assert crops.faces.shape == (2, 3, 256, 256) and crops.parts.shape == (2, 4, 3, 64, 64)


def test_the_client_snippets_run_against_a_server(served, two_people, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(two_people["forged"].path, tmp_path / "upload.mp4")
    exec(runnable("with DeepfakeClient(").code.replace("127.0.0.1:8001", served.grpc_url), {})
    printed = capsys.readouterr().out.splitlines()
    score, verdict = printed[0].split()[:2]
    assert verdict == "fake" and 0.5 < float(score) <= 1
    assert sum(line.startswith("Track(") for line in printed) == 2 and printed[-1].startswith("Face(")

    shutil.copy(two_people["forged"].path, tmp_path / "interview.mp4")
    exec(runnable("client.stream(").code.replace("127.0.0.1:8001", served.grpc_url), {})
    updates = capsys.readouterr().out.splitlines()
    assert len(updates) >= 3 and updates[0].startswith("False [0") and updates[-1].startswith("True [")
    tracks = [dict(ast.literal_eval(line[line.rindex("[("):])) for line in updates]  # [(id, P(fake)), ...]
    assert all(len(t) == 2 and t[1] > 0.5 > t[0] for t in tracks), updates  # the forged person, from the start

    code = runnable("AsyncDeepfakeClient(").code.replace("127.0.0.1:8001", served.grpc_url)
    namespace: dict = {}
    exec(code.replace("print(asyncio.run(", "answer = (asyncio.run("), namespace)
    answer = namespace["answer"]
    assert answer["upload.mp4"] == "fake"
    assert answer["another.mp4"].startswith("error:") and "another.mp4" in answer["another.mp4"]


@pytest.mark.slow  # trains a small model, as a user would from the README
def test_the_training_snippet_runs(tmp_path):
    block = runnable("dfguard synth data/videos")
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", "-e", "-c", block.code], cwd=tmp_path, env=environment, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "tiny"
    assert (run / "best.pt").is_file() and (run / "calibration" / "calibration.json").is_file()
    assert {"roc.png", "histogram.png", "reliability.png"} <= {p.name for p in (run / "eval").iterdir()}
    assert "ECE" in (run / "eval" / "metrics.md").read_text()
    assert len(list((tmp_path / "model_repository_artifacts").glob("*.onnx"))) >= 4
