"""dfguard.train: the tiny preset trains on synthetic forgeries, generalises within families, resumes, evaluates,
and trains under torchrun with two CPU processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from training_data import SEEN, UNSEEN

from dfguard.inference.checkpoint import load_model
from dfguard.train.config import load_preset
from dfguard.train.data import FrameDataset
from dfguard.train.evaluate import evaluate
from dfguard.train.trainer import Trainer, best_stage

BIN = Path(sys.executable).parent


def test_training_writes_checkpoints_logs_and_history(trained, capsys):
    for name in ("best.pt", "last.pt", "stage1_best.pt", "stage2_best.pt", "history.json", "config.json"):
        assert (trained / name).is_file(), name
    assert list((trained / "tensorboard").glob("events.out.tfevents.*"))
    history = json.loads((trained / "history.json").read_text())
    assert [(h["stage"], h["epoch"]) for h in history] == [(1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 2)]
    assert all(0.0 <= h["val_auc"] <= 1.0 for h in history if "val_auc" in h)


def test_trained_on_two_families_it_detects_held_out_clips_of_them(trained, prepared, tmp_path):
    results = evaluate(trained / "best.pt", prepared, tmp_path, progress=False)
    per_method = results["clean"]["per_method"]
    for family in SEEN:
        print(f"{family} (seen): video AUC {per_method[family]['video']['auc']:.3f}, "
              f"frame AUC {per_method[family]['frame']['auc']:.3f}")
        assert per_method[family]["frame"]["auc"] >= 0.9
        assert per_method[family]["video"]["auc"] >= 0.9
    for family in UNSEEN:  # reported, not asserted: this is the generalisation question
        print(f"{family} (unseen): video AUC {per_method[family]['video']['auc']:.3f}")


def test_stage_two_decides_by_the_nearer_centre_and_separates_the_training_data(trained, prepared):
    """What a user checks of CDNet's stage 2: the nearer-centre decision (eq. 5) tells the classes apart on the
    data it was trained on, and the score is that decision. How far the centres move in two short epochs is
    noise (it once failed here within 0.3 %); that they move by α (eq. 4) is checked exactly in test_models."""
    history = json.loads((trained / "history.json").read_text())
    assert [h["epoch"] for h in history if h["stage"] == 2] == [0, 1, 2]
    loaded = load_model(trained / "stage2_best.pt")
    model = loaded.model
    assert loaded.stage == 2
    assert load_model(trained / "best.pt").stage == int(best_stage(history, True)[len("stage")])
    frames = FrameDataset(prepared, "train", methods=SEEN)  # what the trained fixture trained on
    batch = torch.utils.data.default_collate([frames[i] for i in range(len(frames))])
    with torch.no_grad():
        embedding = model(batch["faces"], batch["parts"], batch["dct_map"], batch["freq_vector"]).embedding
    labels = batch["label"].bool()
    nearer_fake = model.centers.is_fake(embedding)
    recall_fake, recall_real = nearer_fake[labels].float().mean(), (~nearer_fake[~labels]).float().mean()
    print(f"nearer-centre decision on the training frames: fake recall {recall_fake:.3f}, real {recall_real:.3f}")
    assert (recall_fake + recall_real) / 2 >= 0.85  # 0.91-1.00 over seeds 0-19 (chance: 0.5)
    served = loaded.spec().scorer().frame_scores(embedding.numpy(), None)  # the rule the ensemble serves
    assert np.array_equal(served > 0.5, nearer_fake.numpy())


def test_an_interrupted_run_resumes_where_it_stopped(prepared, tmp_path):
    short = load_preset("tiny", ("stage1.epochs=1", "stage2.epochs=0"))
    Trainer(short, prepared, tmp_path, progress=False).run()
    first = json.loads((tmp_path / "history.json").read_text())
    longer = load_preset("tiny", ("stage1.epochs=2", "stage2.epochs=0"))
    Trainer(longer, prepared, tmp_path, progress=False).run()
    second = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in second] == [1, 2] and second[0] == first[0]  # epoch 1 was not trained again


def test_eval_writes_metrics_table_and_roc(trained, prepared, tmp_path):
    results = evaluate(trained / "best.pt", prepared, tmp_path, jpeg=(30,), blur=(2.0,), progress=False)
    assert set(results) == {"clean", "jpeg30", "blur2"}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved["results"]["clean"]["all"]) == {"frame", "video"}
    assert set(saved["results"]["clean"]["all"]["frame"]) == {"auc", "eer", "ap", "acc", "n", "reals", "fakes",
                                                               "tpr@fpr0.1", "tpr@fpr0.01", "tpr@fpr0.001"}
    table, operating = (tmp_path / "metrics.md").read_text().split("\n\n", 1)
    table = table.splitlines()
    assert table[0].startswith("| model | condition | bilinear | nearest | pixel_shuffle | transposed_conv |")
    assert len(table) == 5
    rows = [line for line in operating.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| methods | real videos | fake videos | tpr@fpr0.1 |")
    assert len(rows) == 1 + 1 + 4  # the header, all methods, each method
    assert (tmp_path / "roc.png").stat().st_size > 10_000
    dfguard = BIN / "dfguard"
    summary = subprocess.run([str(dfguard), "eval", "--summary", str(tmp_path / "metrics.json")], capture_output=True,
                             text=True, timeout=120)
    assert summary.returncode == 0, summary.stderr
    header, _, row = summary.stdout.strip().splitlines()
    assert header == "| model (video AUC) | prepared/test |" and row.startswith("| tiny | ")


def test_torchrun_with_two_cpu_processes(prepared, tmp_path):
    command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "dfguard"), "train",
               "--config", "tiny", "--data", str(prepared), "--out", str(tmp_path / "ddp"), "--device", "cpu",
               "--verify-replicas", "--set", "stage1.epochs=1", "--set", "stage2.epochs=1",
               "--set", f"data.methods=[{SEEN[0]}]"]  # the real videos and one family: the plumbing, at half the data
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("stage 1 epoch 1/1") == 1  # printed by rank 0 only
    assert len(list((tmp_path / "ddp" / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert (tmp_path / "ddp" / "best.pt").is_file()
    loaded = load_model(tmp_path / "ddp" / "stage2_best.pt")  # best.pt: whichever stage validated better
    model = loaded.model
    assert loaded.stage == 2 and all(torch.isfinite(p).all() for p in model.parameters())
    assert not np.isclose(float((model.centers.fake - model.centers.real).norm()), 0.0)


def test_best_pt_is_stage_two_unless_stage_one_validated_better():
    """A cluster stage that diverged (validation AUC 0.83 → 0.71, measured on real faces) must not replace the
    stage-1 model; one that holds or improves does."""
    stage_one = [{"stage": 1, "epoch": 1, "val_auc": 0.78}, {"stage": 1, "epoch": 2, "val_auc": 0.83},
                 {"stage": 2, "epoch": 0, "center_distance": 1.2}]
    assert best_stage([*stage_one, {"stage": 2, "epoch": 1, "val_auc": 0.71}], True) == "stage1_best.pt"
    assert best_stage([*stage_one, {"stage": 2, "epoch": 1, "val_auc": 0.83}], True) == "stage2_best.pt"
    assert best_stage(stage_one, False) == "stage1_best.pt"


def real_videos_only(prepared: Path, folder: Path) -> Path:
    """A prepared folder holding the real videos of ``prepared`` alone (what a folder of real videos gives)."""
    folder.mkdir()
    (folder / "crops").symlink_to(prepared / "crops")
    lines = [line for line in (prepared / "manifest.jsonl").read_text().splitlines() if json.loads(line)["label"] == 0]
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_real_videos_alone_are_evaluated_and_calibrated_on_their_self_blends(trained, prepared, tmp_path):
    from dfguard.train.calibrate import calibrate
    from dfguard.train.evaluate import SELF_BLEND, SplitScorer

    reals = real_videos_only(prepared, tmp_path / "reals")
    scored = SplitScorer(load_model(trained / "best.pt"), reals, "test", self_blend=True).score(progress=False)
    videos = scored.per_video()
    real_ids = {v for v, _, label, _ in videos if label == 0}
    assert real_ids and {v for v, _, label, method in videos if label == 1 and method == SELF_BLEND} == {
        f"{v}#self-blend" for v in real_ids}  # each real video beside its self-blended copy
    again = SplitScorer(load_model(trained / "best.pt"), reals, "test", self_blend=True).score(progress=False)
    np.testing.assert_array_equal(scored.scores, again.scores)  # the same blends every time
    results = evaluate(trained / "best.pt", reals, tmp_path / "eval", self_blend=True, progress=False)
    assert set(results["clean"]["per_method"]) == {SELF_BLEND}
    assert 0.0 <= results["clean"]["all"]["video"]["auc"] <= 1.0
    report = calibrate(trained / "best.pt", reals, tmp_path / "calibration", self_blend=True, progress=False)
    assert report.reals == report.fakes > 0 and "self-blended" in report.fitted.calibration.fitted_on
