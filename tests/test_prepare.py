"""dfguard.train.prepare: crops on disk with a manifest, errors recorded, reruns resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dfguard.faces.settings import CropConfig
from dfguard.train.datasets import VideoRecord, load_csv
from dfguard.train.prepare import MANIFEST, prepare_dataset, read_manifest
from dfguard.train.synthetic import VideoSpec, make_dataset, write_video

CONFIG = CropConfig(size=128)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> list[VideoRecord]:
    """Two real and two fake synthetic videos, a faceless video and a corrupt file."""
    root = tmp_path_factory.mktemp("data")
    records = load_csv(make_dataset(root, families=("bilinear",), videos_per_class=2,
                                    spec=VideoSpec(width=192, height=160, frames=12), progress=False))
    flat = write_video(root / "flat.mp4", [np.full((160, 192, 3), 120, np.uint8)] * 6, VideoSpec(192, 160, 6))
    broken = root / "broken.mp4"
    broken.write_bytes(records[0].path.read_bytes()[:3000])
    return [*records, VideoRecord(flat, 0, "train", "real", "flat.mp4"),
            VideoRecord(broken, 1, "train", "fake", "broken.mp4")]


def test_every_video_gets_one_record_and_lossless_crops(dataset, tmp_path):
    written = prepare_dataset(dataset, tmp_path, frames=5, config=CONFIG, progress=False)
    by_id = {r.video_id: r for r in read_manifest(tmp_path)}
    assert len(written) == len(by_id) == len(dataset)
    assert by_id["flat.mp4"].status == "no_face" and by_id["flat.mp4"].faces == 0
    assert by_id["broken.mp4"].status == "error" and "video" in by_id["broken.mp4"].error
    good = [r for r in by_id.values() if r.status == "ok"]
    # full range keeps faces scoring 0.65 (dfguard.faces.settings): one frame of these clips may score 0.62
    assert len(good) == 4 and all(r.frames == 5 and r.faces >= 4 for r in good) and sum(r.faces for r in good) >= 19
    good = [r for r in good if r.faces == 5]
    with np.load(tmp_path / good[0].crops) as crops:
        assert crops["faces"].shape == (5, 3, 128, 128) and crops["faces"].dtype == np.uint8
        assert crops["parts"].shape == (5, 4, 3, 64, 64)
        np.testing.assert_array_equal(crops["frame_index"], [0, 3, 6, 8, 11])  # spread over all 12 frames
        np.testing.assert_array_equal(crops["face_frame"], np.arange(5))  # the largest face of each frame
        assert crops["face_track"].tolist() == [0] * 5 and crops["track_counts"].tolist() == [True]
        assert crops["face_box"].shape == (5, 4)


def test_a_rerun_resumes_and_a_torn_last_line_is_redone(dataset, tmp_path):
    first = prepare_dataset(dataset[:3], tmp_path, frames=3, config=CONFIG, progress=False)
    assert len(first) == 3
    manifest = tmp_path / MANIFEST
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # crash mid-write
    second = prepare_dataset(dataset, tmp_path, frames=3, config=CONFIG, progress=False)
    assert sorted(r.video_id for r in second) == sorted([dataset[2].video_id] + [r.video_id for r in dataset[3:]])
    assert len(read_manifest(tmp_path)) == len(dataset)
    for line in manifest.read_text().splitlines():
        json.loads(line)  # every line whole again
    assert prepare_dataset(dataset, tmp_path, frames=3, config=CONFIG, progress=False) == []


def test_worker_processes_give_the_same_records(dataset, tmp_path):
    serial = prepare_dataset(dataset[:4], tmp_path / "serial", frames=3, config=CONFIG, progress=False)
    parallel = prepare_dataset(dataset[:4], tmp_path / "parallel", frames=3, config=CONFIG, workers=2, progress=False)
    assert sorted((r.video_id, r.status, r.faces) for r in serial) == sorted(
        (r.video_id, r.status, r.faces) for r in parallel)
    for r in serial:
        with np.load(tmp_path / "serial" / r.crops) as a, np.load(tmp_path / "parallel" / r.crops) as b:
            np.testing.assert_array_equal(a["faces"], b["faces"])


def test_cli_synth_then_prepare(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    dfguard = Path(sys.executable).with_name("dfguard")
    run = lambda *a: subprocess.run([str(dfguard), *a], capture_output=True, text=True, timeout=300)  # noqa: E731
    made = run("synth", str(tmp_path / "data"), "--videos-per-class", "2", "--families", "nearest", "--frames", "6",
               "--size", "160")
    assert made.returncode == 0, made.stderr
    prepared = run("prepare", str(tmp_path / "data/manifest.csv"), "--out", str(tmp_path / "crops"), "--frames", "3",
                   "--size", "128", "--workers", "1")
    assert prepared.returncode == 0, prepared.stderr
    assert "4 videos" in prepared.stdout and "4 ok" in prepared.stdout
    assert len(read_manifest(tmp_path / "crops")) == 4


def test_all_faces_keeps_every_person_with_their_track(tmp_path):
    from dfguard.train.scenes import make_people_video

    spec = VideoSpec(width=640, height=360, frames=20, keyframe_interval=10)
    video = make_people_video(tmp_path / "two.mp4", spec, np.random.default_rng(3), people=2, family="nearest",
                              min_face_px=80)
    record = VideoRecord(video.path, 1, "test", "nearest", "two.mp4")
    for faces, expected in (("largest", 4), ("all", 8)):
        (prepared,) = prepare_dataset([record], tmp_path / faces, frames=4, config=CONFIG, progress=False,
                                      faces=faces)
        assert prepared.status == "ok" and prepared.faces == expected
        with np.load(tmp_path / faces / prepared.crops) as crops:
            assert crops["faces"].shape == (expected, 3, 128, 128)
            assert np.bincount(crops["face_frame"]).tolist() == [expected // 4] * 4
            tracks = crops["face_track"]
            assert crops["track_counts"].tolist() == [True, True]  # both people found in every frame
            if faces == "all":
                assert sorted(np.bincount(tracks).tolist()) == [4, 4]  # one track per person
                for track in (0, 1):  # a track stays on one person: its boxes move by the camera's pan only
                    boxes = crops["face_box"][tracks == track]
                    assert np.abs(boxes - boxes[0]).max() < 130
    with pytest.raises(ValueError, match="faces must be one of"):
        prepare_dataset([record], tmp_path / "x", frames=2, config=CONFIG, progress=False, faces="most")
