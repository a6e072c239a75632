"""dfguard.train.datasets: loaders on small directory trees laid out exactly like the real data sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfguard.train.datasets import (
    DatasetError,
    load_celebdf,
    load_csv,
    load_dfdc,
    load_faceforensics,
    load_folder,
    video_group,
)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")
    return path


def make_ffpp(root: Path, pairs: dict[str, list[list[str]]], methods=("Deepfakes", "Face2Face"), c="c23"):
    for split, split_pairs in pairs.items():
        (root / "splits").mkdir(parents=True, exist_ok=True)
        (root / "splits" / f"{split}.json").write_text(json.dumps(split_pairs))
        for a, b in split_pairs:
            touch(root / "original_sequences/youtube" / c / "videos" / f"{a}.mp4")
            touch(root / "original_sequences/youtube" / c / "videos" / f"{b}.mp4")
            for method in methods:
                for x, y in ((a, b), (b, a)):
                    touch(root / "manipulated_sequences" / method / c / "videos" / f"{x}_{y}.mp4")
    return {split: root / "splits" / f"{split}.json" for split in pairs}


def test_faceforensics_follows_the_official_pairs(tmp_path):
    splits = make_ffpp(tmp_path, {"train": [["071", "054"], ["087", "081"]], "test": [["953", "974"]]})
    records = load_faceforensics(tmp_path, splits, methods=("Deepfakes", "Face2Face"))
    assert len(records) == 3 * (2 + 2 * 2)
    test = [r for r in records if r.split == "test"]
    assert {r.video_id for r in test} == {
        "original_sequences/youtube/c23/videos/953.mp4", "original_sequences/youtube/c23/videos/974.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/953_974.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/974_953.mp4",
        "manipulated_sequences/Face2Face/c23/videos/953_974.mp4",
        "manipulated_sequences/Face2Face/c23/videos/974_953.mp4"}
    assert all(r.label == (r.method != "real") for r in records)
    assert len({r.video_id for r in records}) == len(records)  # ids include the method: no collisions


def test_faceforensics_errors_name_the_file(tmp_path):
    splits = make_ffpp(tmp_path, {"train": [["000", "003"]]})
    with pytest.raises(DatasetError, match=r"NeuralTextures videos not found.*NeuralTextures/c23/videos"):
        load_faceforensics(tmp_path, splits, methods=("Deepfakes", "NeuralTextures"))
    with pytest.raises(DatasetError, match=r"compression must be one of"):
        load_faceforensics(tmp_path, splits, compression="c30")
    (tmp_path / "splits" / "bad.json").write_text('{"pairs": 1}')
    with pytest.raises(DatasetError, match=r"bad\.json: expected a JSON list of \[id, id\] pairs"):
        load_faceforensics(tmp_path, {"val": tmp_path / "splits" / "bad.json"}, methods=("Deepfakes",))
    (tmp_path / "splits" / "broken.json").write_text("[[")
    with pytest.raises(DatasetError, match=r"broken\.json: not valid JSON"):
        load_faceforensics(tmp_path, {"val": tmp_path / "splits" / "broken.json"}, methods=("Deepfakes",))
    (tmp_path / "manipulated_sequences/Deepfakes/c23/videos/003_000.mp4").unlink()
    with pytest.raises(DatasetError, match=r"1 of 6 videos are missing.*003_000.mp4"):
        load_faceforensics(tmp_path, splits, methods=("Deepfakes", "Face2Face"))


def test_celebdf_test_list_flags_real_with_1(tmp_path):
    for name in ("Celeb-real/id0_0000.mp4", "Celeb-real/id1_0001.mp4", "YouTube-real/00170.mp4",
                 "Celeb-synthesis/id0_id1_0000.mp4", "Celeb-synthesis/id1_id0_0001.mp4"):
        touch(tmp_path / name)
    (tmp_path / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n1 Celeb-real/id1_0001.mp4\n")
    records = {r.video_id: r for r in load_celebdf(tmp_path)}
    assert records["YouTube-real/00170.mp4"].label == 0 and records["YouTube-real/00170.mp4"].split == "test"
    assert records["Celeb-synthesis/id0_id1_0000.mp4"].label == 1
    assert records["Celeb-synthesis/id1_id0_0001.mp4"].split == "train"
    assert sum(r.split == "test" for r in records.values()) == 3


@pytest.mark.parametrize(("listing", "message"), [
    ("1 YouTube-real/00170.mp4\n2 Celeb-real/x.mp4\n", r"List_of_testing_videos.txt:2: expected"),
    ("1 YouTube-real/missing.mp4\n", "1 listed video"),
    ("0 YouTube-real/00170.mp4\n", "labels contradict the folders"),
])
def test_celebdf_bad_list(tmp_path, listing, message):
    touch(tmp_path / "YouTube-real/00170.mp4")
    (tmp_path / "List_of_testing_videos.txt").write_text(listing)
    with pytest.raises(DatasetError, match=message):
        load_celebdf(tmp_path)


def test_celebdf_without_its_list(tmp_path):
    with pytest.raises(DatasetError, match=r"expected the test list .*List_of_testing_videos.txt"):
        load_celebdf(tmp_path)


def test_dfdc_reads_every_part(tmp_path):
    for part, entries in (("dfdc_train_part_0", {"a.mp4": {"label": "FAKE", "split": "train", "original": "b.mp4"},
                                                 "b.mp4": {"label": "REAL", "split": "train"}}),
                          ("dfdc_train_part_1", {"c.mp4": {"label": "REAL", "split": "train"}})):
        for name in entries:
            touch(tmp_path / part / name)
        (tmp_path / part / "metadata.json").write_text(json.dumps(entries))
    records = {r.video_id: r for r in load_dfdc(tmp_path)}
    assert set(records) == {"dfdc_train_part_0/a.mp4", "dfdc_train_part_0/b.mp4", "dfdc_train_part_1/c.mp4"}
    assert records["dfdc_train_part_0/a.mp4"].label == 1 and records["dfdc_train_part_1/c.mp4"].label == 0


def test_dfdc_bad_metadata(tmp_path):
    with pytest.raises(DatasetError, match=r"no metadata.json found"):
        load_dfdc(tmp_path)
    touch(tmp_path / "p/x.mp4")
    (tmp_path / "p/metadata.json").write_text(json.dumps({"x.mp4": {"label": "fake"}}))
    with pytest.raises(DatasetError, match=r"metadata.json: video 'x.mp4' needs a label FAKE or REAL"):
        load_dfdc(tmp_path)


def test_csv_paths_are_relative_to_the_file(tmp_path):
    touch(tmp_path / "videos/a.mp4")
    touch(tmp_path / "videos/b.mp4")
    (tmp_path / "list.csv").write_text("path,label,split,family\nvideos/a.mp4,0,train,real\nvideos/b.mp4,fake,test,"
                                       "nearest\n")
    a, b = load_csv(tmp_path / "list.csv")
    assert (a.label, a.split, a.method, b.label, b.split, b.method) == (0, "train", "real", 1, "test", "nearest")
    assert b.path == (tmp_path / "videos/b.mp4").resolve()


@pytest.mark.parametrize(("text", "message"), [
    ("file,label\nx.mp4,0\n", "must name at least the columns path,label"),
    ("path,label\nvideos/a.mp4,maybe\n", r"list.csv:2: label must be 0/1 or real/fake"),
    ("path,label\n,1\n", r"list.csv:2: empty path"),
    ("path,label\nvideos/missing.mp4,1\n", "1 of 1 videos are missing"),
])
def test_csv_mistakes_are_named(tmp_path, text, message):
    touch(tmp_path / "videos/a.mp4")
    (tmp_path / "list.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_csv(tmp_path / "list.csv")


def test_a_folder_of_real_videos_is_split_by_person_and_clip(tmp_path):
    """Every video under the folder, labelled real; the copies of a clip and a person's clips share a split."""
    names = [f"mead/M{k:03d}_level_1_{mood}_{k:03d}.mp4" for k in range(6) for mood in ("happy", "angry")]
    names += [f"vox/id{10000 + k}/clip{j}.mp4" for k in range(4) for j in range(3)]
    names += [f"talk/{k}.mp4" for k in range(8)] + [f"talk/{k}_83b19e{k}a.mp4" for k in range(8)]
    for name in names:
        touch(tmp_path / name)
    touch(tmp_path / "notes.txt")
    records = load_folder(tmp_path)
    assert sorted(r.video_id for r in records) == sorted(names)
    assert {r.label for r in records} == {0} and {r.method for r in records} == {"real"}
    split_of = {r.video_id: r.split for r in records}
    for k in range(6):
        assert len({split_of[f"mead/M{k:03d}_level_1_{mood}_{k:03d}.mp4"] for mood in ("happy", "angry")}) == 1
    for k in range(4):
        assert len({split_of[f"vox/id{10000 + k}/clip{j}.mp4"] for j in range(3)}) == 1
    for k in range(8):
        assert split_of[f"talk/{k}.mp4"] == split_of[f"talk/{k}_83b19e{k}a.mp4"]
    counts = {name: sum(s == name for s in split_of.values()) for name in ("train", "val", "test")}
    assert counts["val"] >= 0.1 * len(names) and counts["test"] >= 0.1 * len(names) and counts["train"] > len(names) / 2
    assert load_folder(tmp_path, seed=0) == records and load_folder(tmp_path, seed=1) != records  # a fixed draw


def test_a_group_pattern_and_a_csv_without_splits(tmp_path):
    for name in ("a/anna_1.mp4", "a/anna_2.mp4", "b/bob_1.mp4", "c/cleo_1.mp4", "d/dan_1.mp4"):
        touch(tmp_path / name)
    assert video_group("a/anna_1.mp4", r"/(\w+?)_\d") == "anna"
    assert video_group("talk/12.mp4") == "talk/12" and video_group("x/517600055.mp4") == "x/517600055"
    records = load_folder(tmp_path, group=r"/(\w+?)_\d")
    assert len({r.split for r in records if "anna" in r.video_id}) == 1
    assert {r.split for r in records} == {"train", "val", "test"}  # three groups or more: val and test get one
    (tmp_path / "real.csv").write_text("path,label\n" + "".join(f"{r.video_id},real\n" for r in records))
    assert [(r.video_id, r.split) for r in load_csv(tmp_path / "real.csv", group=r"/(\w+?)_\d")] == [
        (r.video_id, r.split) for r in records]


def test_a_folder_without_videos_is_named(tmp_path):
    touch(tmp_path / "readme.txt")
    with pytest.raises(DatasetError, match="no video files under"):
        load_folder(tmp_path)
    with pytest.raises(DatasetError, match="expected a folder of videos"):
        load_folder(tmp_path / "missing")
