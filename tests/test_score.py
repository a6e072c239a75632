"""``dfguard score``: one record per input (errors included), JSONL and CSV, resumable after SIGKILL."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import DFGUARD, read_jsonl
from PIL import Image

from dfguard.answer import Face, Track
from dfguard.client.inputs import collect_inputs
from dfguard.client.results import CSV_FIELDS, CSV_HEADER, Record, ResultsFile
from dfguard.pipeline import LocalDetector
from dfguard.train.datasets import load_csv
from dfguard.video import read_frames


@pytest.fixture(scope="module")
def inbox(prepared, tmp_path_factory) -> Path:
    """A folder like an analyst's: test videos in sub-folders, one frame as a PNG, a broken "video", a text."""
    folder = tmp_path_factory.mktemp("inbox")
    records = [r for r in load_csv(prepared.parent / "videos" / "manifest.csv") if r.split == "test"][::3]
    for k, record in enumerate(records):
        sub = folder / ("a" if k % 2 else "b")
        sub.mkdir(exist_ok=True)
        shutil.copy(record.path, sub / f"{k:02d}.mp4")
    Image.fromarray(read_frames(records[0].path, 1).images[0]).save(folder / "frame.png")
    (folder / "broken.mp4").write_bytes(bytes(range(256)) * 10)
    (folder / "notes.txt").write_text("not media")
    return folder


def score(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([DFGUARD, "score", *arguments, "--no-progress"], capture_output=True, text=True,
                          timeout=timeout)


def test_collect_inputs_expands_folders_globs_and_manifests(inbox, tmp_path):
    videos = sorted(str(p) for p in inbox.rglob("*.mp4"))
    found = collect_inputs([str(inbox)])
    assert sorted(map(str, found)) == sorted([*videos, str(inbox / "frame.png")])  # notes.txt is no media
    assert collect_inputs([str(inbox / "a" / "*.mp4")]) == sorted((inbox / "a").glob("*.mp4"))
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# to check\n{videos[0]}\n\n{videos[1]}\n")
    table = tmp_path / "list.csv"
    table.write_text(f"path,label\n{videos[1]},1\n{videos[2]},0\n")
    assert collect_inputs([str(manifest), str(table), videos[0]]) == [Path(v) for v in videos[:3]]
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        collect_inputs([str(tmp_path / "no_such_folder")])


def test_records_for_every_input_in_jsonl_and_csv_equal_in_process_scores(served, trained, inbox, tmp_path):
    inputs = collect_inputs([str(inbox)])
    for out in (tmp_path / "results.jsonl", tmp_path / "results.csv"):
        done = score(str(inbox), "--url", served.grpc_url, "--out", str(out), "-n", "3", "--num-frames", "6")
        assert done.returncode == 1, done.stderr  # broken.mp4 failed
        assert f"{len(inputs)} inputs:" in done.stdout and "1 failed" in done.stdout
        if out.suffix == ".csv":
            with out.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            assert list(rows[0]) == CSV_FIELDS  # one row per input: the top track, not the lists of faces
            assert all(r["top_track_score"] == "" or float(r["top_track_score"]) >= 0 for r in rows)
        records = ResultsFile(out).open()
        assert sorted(r.path for r in records) == sorted(map(str, inputs))
    by_path = {Path(r.path).name: r for r in records}
    jsonl = {Path(r["path"]).name: r for r in read_jsonl(tmp_path / "results.jsonl")}
    broken = by_path["broken.mp4"]
    assert broken.status == "error" and "INVALID_ARGUMENT" in broken.error and "not a readable" in broken.error
    local = LocalDetector(trained / "best.pt")
    for path in inputs:
        record = by_path[path.name]
        if path.suffix == ".png":
            expected = local.score_image(path)
        elif path.name != "broken.mp4":
            expected = local.score(path, 6)
            assert record.frame_index == expected.frame_index.tolist()
        else:
            continue
        faces, expected = expected.faces, expected.scores
        assert record.status == ("no_face" if np.isnan(expected.video_score) else "ok")
        assert record.face_count == len(faces) == len(jsonl[path.name]["faces"])
        assert [f["track"] for f in jsonl[path.name]["faces"]] == faces.track.tolist()
        np.testing.assert_allclose([t["score"] for t in jsonl[path.name]["tracks"]], expected.track_scores, atol=1e-3)
        assert record.verdict == expected.verdict
        assert abs(record.score - expected.video_score) < 1e-3
        assert record.is_flagged(0.5) == (record.score >= 0.5)


def test_sigkill_halfway_then_rerun_gives_exactly_one_record_per_input(served, inbox, tmp_path):
    inputs = collect_inputs([str(inbox)])
    out = tmp_path / "results.jsonl"
    command = [DFGUARD, "score", str(inbox), "--url", served.grpc_url, "--out", str(out), "-n", "1", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while (not out.exists() or len(out.read_text().splitlines()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(read_jsonl(out))
    assert 2 <= written < len(inputs), "killed too late to test resuming"
    with out.open("a") as handle:
        handle.write('{"path": "torn by a crash')  # what a kill in the middle of a write could leave
    done = score(str(inbox), "--url", served.grpc_url, "--out", str(out))
    assert "cut off a torn last record" in done.stdout
    assert f"{written} already in" in done.stdout
    records = read_jsonl(out)
    assert sorted(r["path"] for r in records) == sorted(map(str, inputs))  # none lost, none duplicated
    again = score(str(inbox), "--url", served.grpc_url, "--out", str(out))
    assert "0 scored now" in again.stdout and len(read_jsonl(out)) == len(inputs)


def test_retry_errors_rescores_failed_inputs_and_keeps_one_record_each(served, inbox, tmp_path):
    from dfguard.serving.server import free_ports

    videos = [str(p) for p in sorted(inbox.rglob("0*.mp4"))[:3]]
    out = tmp_path / "results.jsonl"
    dead = f"127.0.0.1:{free_ports(1)[0]}"  # nothing listens: UNAVAILABLE
    down = score(*videos, "--url", dead, "--out", str(out), "--retries", "2", "--timeout", "5")
    assert down.returncode == 1 and all(r["status"] == "error" and "UNAVAILABLE" in r["error"]
                                        for r in read_jsonl(out))
    skipped = score(*videos, "--url", served.grpc_url, "--out", str(out))
    assert skipped.returncode == 1 and "0 scored now" in skipped.stdout  # recorded errors are not retried...
    retried = score(*videos, "--url", served.grpc_url, "--out", str(out), "--retry-errors")
    assert retried.returncode == 0, retried.stdout  # ...unless asked
    records = read_jsonl(out)
    assert sorted(r["path"] for r in records) == sorted(videos) and all(r["status"] == "ok" for r in records)


def test_a_changed_file_is_scored_again(served, inbox, tmp_path):
    video = tmp_path / "clip.mp4"
    shutil.copy(next(inbox.rglob("00.mp4")), video)
    out = tmp_path / "results.jsonl"
    score(str(video), "--url", served.grpc_url, "--out", str(out))
    shutil.copy(next(inbox.rglob("01.mp4")), video)
    score(str(video), "--url", served.grpc_url, "--out", str(out))
    records = read_jsonl(out)
    assert len(records) == 2 and records[0]["sha256"] != records[1]["sha256"]


def test_local_scoring_needs_no_server_and_draws_timelines(trained, inbox, tmp_path):
    video = next(inbox.rglob("00.mp4"))
    out = tmp_path / "local.jsonl"
    done = score(str(video), "--local", str(trained / "best.pt"), "--out", str(out), "--num-frames", "6",
                 "--plots", str(tmp_path / "plots"))
    assert done.returncode == 0, done.stderr
    (record,) = read_jsonl(out)
    expected = LocalDetector(trained / "best.pt").score(video, 6).scores
    assert record["model"] == "local:best.pt" and abs(record["score"] - expected.video_score) < 1e-6
    assert [t["score"] for t in record["tracks"]] == pytest.approx(expected.track_scores.tolist(), abs=1e-6)
    timeline = tmp_path / "plots" / f"00-{hashlib.sha256(record['path'].encode()).hexdigest()[:8]}.png"
    for picture in (timeline, tmp_path / "plots" / "scores.png"):
        with Image.open(picture) as image:
            assert image.size[0] > 300 and image.getextrema() != ((255, 255),) * len(image.getbands())


def test_results_file_round_trips_records_with_missing_values(tmp_path):
    record = Record("a b,c.mp4", "00ff", "video", "error", attempts=2, seconds=0.5, error="line one\nline two")
    for name in ("r.jsonl", "r.csv"):
        results = ResultsFile(tmp_path / name)
        assert results.open() == []
        results.append(record)
        track = Track(0, 0.25, 1, 0, 0)
        results.append(Record("x.mp4", "11", "video", "ok", score=0.25, verdict="real", face_count=1,
                              frame_index=[0, 5], frame_scores=[0.25, None], tracks=(track,),
                              faces=(Face(0, (1.0, 2.0, 30.0, 40.0), 0, 0.25),)))
        first, second = ResultsFile(tmp_path / name).open()
        assert first.path == "a b,c.mp4" and first.attempts == 2 and "line one" in first.error
        assert second.frame_scores == [0.25, None] and not second.is_flagged(0.5) and second.score == 0.25
        assert second.top_track == track and second.face_count == 1
        assert (second.faces is None) == name.endswith(".csv")  # a CSV row keeps the top track only
        assert len((tmp_path / name).read_text().splitlines()) == 2 + (name.endswith(".csv"))


def test_a_resume_reads_outlines_and_removing_records_keeps_the_others_byte_for_byte(tmp_path):
    """A resuming run holds each earlier record without its per-frame and per-face lists (a shard of 250 000 HD
    results would not fit in a pod's memory otherwise); --retry-errors takes error records out without touching the
    bytes of the others."""
    faces = tuple(Face(k, (1.0, 2.0, 30.0, 40.0), 0, 0.5) for k in range(32))
    full = [Record(f"/v/{k}.mp4", f"{k:02x}", "video", "error" if k % 3 == 0 else "ok",
                   score=None if k % 3 == 0 else k / 10, verdict="real", face_count=32, frame_index=list(range(32)),
                   frame_scores=[0.5] * 32, faces=faces, attempts=1, error="UNAVAILABLE" if k % 3 == 0 else None)
            for k in range(9)]
    results = ResultsFile(tmp_path / "r.jsonl")
    results.open()
    for record in full:
        results.append(record)
    before = (tmp_path / "r.jsonl").read_text().splitlines(keepends=True)
    outlines = ResultsFile(tmp_path / "r.jsonl").open(outline=True)
    assert [r.key for r in outlines] == [r.key for r in full]
    assert [(r.status, r.score, r.face_count, r.error) for r in outlines] == [
        (r.status, r.score, r.face_count, r.error) for r in full]
    assert all(r.faces is None and r.frame_scores is None for r in outlines)
    errors = {r.key for r in full if r.status == "error"}
    results.remove(errors)
    assert (tmp_path / "r.jsonl").read_text().splitlines(keepends=True) == [
        line for line, record in zip(before, full, strict=True) if record.key not in errors]
    assert ResultsFile(tmp_path / "r.jsonl").open() == [r for r in full if r.key not in errors]


def test_results_of_an_older_version_still_resume(tmp_path):
    """Files written when records stored a ``flagged`` column and faces as plain JSON objects: read into this
    version's records, and a CSV's header brought up to date so the rows appended now line up."""
    old_json = {"path": "a.mp4", "sha256": "aa", "kind": "video", "status": "ok", "score": 0.7, "flagged": True,
                "faces": [{"frame": 3, "box": [1, 2, 30, 40], "track": 0, "score": 0.7}],
                "tracks": [{"id": 0, "score": 0.7, "faces": 1, "first_frame": 3, "last_frame": 3}]}
    (tmp_path / "old.jsonl").write_text(json.dumps(old_json) + "\n")
    (record,) = ResultsFile(tmp_path / "old.jsonl").open()
    assert record.score == 0.7 and record.is_flagged(0.5)
    assert record.faces == (Face(3, (1.0, 2.0, 30.0, 40.0), 0, 0.7),) and record.top_track == Track(0, 0.7, 1, 3, 3)
    fields = CSV_HEADER.strip().split(",")
    old_fields = [*fields[:6], "flagged", *fields[6:]]
    row = {"path": "b.mp4", "sha256": "bb", "kind": "video", "status": "ok", "score": "0.2", "flagged": "False"}
    (tmp_path / "old.csv").write_text(",".join(old_fields) + "\n" + ",".join(row.get(f, "") for f in old_fields) + "\n")
    results = ResultsFile(tmp_path / "old.csv")
    (record,) = results.open()
    results.append(Record("c.mp4", "cc", "video", "error", error="refused"))
    assert [r.path for r in ResultsFile(tmp_path / "old.csv").open()] == ["b.mp4", "c.mp4"]
    assert (tmp_path / "old.csv").read_text().splitlines()[0] == CSV_HEADER.strip()


def test_a_csv_with_a_row_per_face_round_trips_and_redoes_a_torn_input(tmp_path):
    faces = tuple(Face(k, (1.0 + k, 2.0, 30.0, 40.0), k % 2, 0.1 * k) for k in range(3))
    tracks = (Track(0, 0.1, 2, 0, 2), Track(1, 0.1, 1, 1, 1))
    people = Record("p.mp4", "aa", "video", "ok", score=0.1, verdict="real", face_count=3, faces=faces, tracks=tracks)
    nobody = Record("n.mp4", "bb", "video", "no_face", verdict="no_face", face_count=0, faces=(), tracks=())
    path = tmp_path / "faces.csv"
    results = ResultsFile(path, per_face=True)
    results.open()
    results.append(people)
    results.append(nobody)
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 3 + 1 and lines[0].endswith("face_track,face_score")
    read = ResultsFile(path).open()  # the file keeps its layout: rows per face, without asking again
    assert [r.faces for r in read] == [faces, ()] and read[0].top_track.id in (0, 1)
    path.write_text("\n".join(lines[:3]) + "\n")  # a crash after two of the three rows of p.mp4
    assert ResultsFile(path, per_face=True).open() == []  # p.mp4 is scored again, not kept with a face missing
    assert path.read_text().splitlines() == lines[:1]
    with pytest.raises(ValueError, match="CSV layout"):
        ResultsFile(tmp_path / "x.jsonl", per_face=True)


def test_a_server_killed_mid_run_and_restarted_on_its_ports_loses_and_repeats_nothing(repository, inbox, tmp_path,
                                                                                       tritonserver):
    """SIGKILL to tritonserver and its stubs while ``dfguard score`` runs, a new server on the same ports: the
    client's retries on UNAVAILABLE carry the run through, and every input is scored exactly once."""
    import os


    sources = sorted(p for p in inbox.rglob("*.mp4") if p.name != "broken.mp4")
    folder = tmp_path / "uploads"
    folder.mkdir()
    for k in range(24):  # enough work that the kill lands mid-run
        shutil.copy(sources[k % len(sources)], folder / f"{k:02d}.mp4")
    out = tmp_path / "results.jsonl"
    with tritonserver(repository) as first:
        ports = first.ports
        run = subprocess.Popen([DFGUARD, "score", str(folder), "--url", first.grpc_url, "--out", str(out), "-n", "1",
                                "--retries", "60", "--timeout", "60", "--no-progress"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while (not out.exists() or len(out.read_text().splitlines()) < 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
    killed_at = len(read_jsonl(out))
    assert killed_at < 24, "the run ended before the kill"
    with tritonserver(repository, ports=ports):
        stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stdout + stderr
    records = read_jsonl(out)
    assert sorted(r["path"] for r in records) == sorted(str(p.resolve()) for p in folder.iterdir())
    assert all(r["status"] == "ok" for r in records) and max(r["attempts"] for r in records) > 1
