"""Our small-scale version of the papers' cross-data-set table: train on two synthetic forgery families, test
on held-out clips of those two and of the two families never seen in training.

    python -m benchmarks.cross_family [--videos-per-class 12] [--no-write]

Models: the ``tiny`` preset (both streams, parts, cluster stage) and its ablations with one stream removed,
``rgb_only (tiny)`` and ``freq_only (tiny)``, all trained with the tiny preset's schedule on the same data.
Cells are video AUCs (mean of frame scores) on the test split; a report, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tqdm import tqdm

from benchmarks.results import write_section
from dfguard.faces.settings import CropConfig
from dfguard.train.config import load_preset
from dfguard.train.datasets import load_csv
from dfguard.train.demo import SEEN, UNSEEN
from dfguard.train.evaluate import evaluate, summary_table
from dfguard.train.prepare import prepare_dataset
from dfguard.train.synthetic import VideoSpec, make_dataset
from dfguard.train.trainer import Trainer

VARIANTS = {"full (tiny)": (), "rgb_only (tiny)": ("model.freq=null",), "freq_only (tiny)": ("model.rgb=null",)}


def main(argv: list[str] | None = None) -> int:
    """Build the data, train the three variants, evaluate, print and record the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos-per-class", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        manifest = make_dataset(root / "videos", families=SEEN + UNSEEN, videos_per_class=args.videos_per_class,
                                spec=VideoSpec(width=160, height=160, frames=10), seed=args.seed)
        prepare_dataset(load_csv(manifest), root / "prepared", frames=8, config=CropConfig(size=128), workers=2)
        rows, frame_rows = {}, {}
        for name, overrides in tqdm(VARIANTS.items(), desc="models"):
            config = load_preset("tiny", (f"data.methods=[{', '.join(SEEN)}]", f"seed={args.seed}", *overrides))
            best = Trainer(config, root / "prepared", root / name, progress=False).run()
            results = evaluate(best, root / "prepared", root / f"{name}-eval", progress=False)["clean"]["per_method"]
            rows[name] = {f"{f} (seen)": results[f]["video"]["auc"] for f in SEEN}
            rows[name] |= {f"{f} (unseen)": results[f]["video"]["auc"] for f in UNSEEN}
            frame_rows[name] = {f"{f} ({'seen' if f in SEEN else 'unseen'})": results[f]["frame"]["auc"]
                                for f in SEEN + UNSEEN}
    test_videos = max(2, round(0.2 * args.videos_per_class))
    body = (summary_table(rows) + "\n" + summary_table(frame_rows, "frame AUC")
            + f"\nTrained on {', '.join(SEEN)} (train split), {args.videos_per_class} videos per class and family, "
            f"8 frames per video, 128 px crops; test split: {test_videos} videos per class and family.")
    print(body)
    if not args.no_write:
        write_section("cross-family", "Cross-family generalisation on synthetic forgeries (small-scale papers' table)",
                      body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
