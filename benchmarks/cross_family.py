"""Our small-scale version of the papers' cross-data-set table: train on two synthetic forgery families, test
on held-out clips of those two and of the two families never seen in training.

    python -m benchmarks.cross_family [--videos-per-class 30] [--seeds 0 1 2] [--forgery blend|family-only]
                                      [--jpeg 50] [--blur 2] [--no-write]

Models: the ``tiny`` preset (both streams, parts, cluster stage) and its ablations with one stream removed,
``rgb_only (tiny)`` and ``freq_only (tiny)``, all trained with the tiny preset's schedule on the same data.
Cells are video AUCs (the served rule) on the test split, the mean over ``--seeds`` (each seed draws its own data
and training) ± half the range, clean and under each degradation; a report, not a pass/fail test.
``--forgery family-only`` makes fakes that differ from real videos by their resampling alone
(``dfguard.train.synthetic``): the honest test of the papers' claim that the frequency stream generalises.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.results import write_section
from dfguard.faces.settings import CropConfig
from dfguard.progress import progress_bar
from dfguard.train.config import load_preset
from dfguard.train.datasets import load_csv
from dfguard.train.demo import SEEN, UNSEEN
from dfguard.train.evaluate import evaluate
from dfguard.train.prepare import prepare_dataset
from dfguard.train.synthetic import VideoSpec, make_dataset
from dfguard.train.trainer import Trainer

VARIANTS = {"full (tiny)": (), "rgb_only (tiny)": ("model.freq=null",), "freq_only (tiny)": ("model.rgb=null",)}


def run_seed(root: Path, seed: int, args: argparse.Namespace) -> dict[str, dict[str, dict[str, float]]]:
    """Data, three trainings and their evaluation for one seed: condition → variant → column → video AUC."""
    manifest = make_dataset(root / "videos", families=SEEN + UNSEEN, videos_per_class=args.videos_per_class,
                            spec=VideoSpec(width=160, height=160, frames=10), seed=seed, forgery=args.forgery,
                            progress=False)
    prepare_dataset(load_csv(manifest), root / "prepared", frames=8, config=CropConfig(size=128), workers=2,
                    progress=False)
    cells: dict[str, dict[str, dict[str, float]]] = {}
    for name, overrides in VARIANTS.items():
        config = load_preset("tiny", (f"data.methods=[{', '.join(SEEN)}]", f"seed={seed}", *overrides))
        best = Trainer(config, root / "prepared", root / name, progress=False).run()
        results = evaluate(best, root / "prepared", root / f"{name}-eval", jpeg=tuple(args.jpeg),
                           blur=tuple(args.blur), progress=False)
        for condition, result in results.items():
            per_method = result["per_method"]
            cells.setdefault(condition, {})[name] = {
                f"{f} ({'seen' if f in SEEN else 'unseen'})": per_method[f]["video"]["auc"] for f in SEEN + UNSEEN}
    return cells


def mean_and_spread(runs: list[dict[str, dict[str, dict[str, float]]]], condition: str) -> str:
    """A markdown table of one condition: mean ± half the range over the seeds."""
    variants = list(runs[0][condition])
    columns = list(runs[0][condition][variants[0]])
    lines = ["| model (video AUC) | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name in variants:
        cells = []
        for column in columns:
            values = np.array([run[condition][name][column] for run in runs])
            cells.append(f"{np.nanmean(values):.3f} ± {(np.nanmax(values) - np.nanmin(values)) / 2:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Build the data, train the three variants for each seed, evaluate, print and record the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos-per-class", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--forgery", choices=("blend", "family-only"), default="blend")
    parser.add_argument("--jpeg", type=int, nargs="*", default=[])
    parser.add_argument("--blur", type=float, nargs="*", default=[])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    runs = []
    for seed in progress_bar(args.seeds, desc="seeds"):
        with tempfile.TemporaryDirectory() as scratch:
            runs.append(run_seed(Path(scratch), seed, args))
    test_videos = max(2, round(0.2 * args.videos_per_class))
    body = "".join(f"{condition}:\n\n{mean_and_spread(runs, condition)}\n" for condition in runs[0])
    body += (f"Fakes: {args.forgery}. Trained on {', '.join(SEEN)} (train split), {args.videos_per_class} videos "
             f"per class and family, 8 frames per video, 128 px crops; test split: {test_videos} videos per class "
             f"and family; seeds {', '.join(map(str, args.seeds))} (mean ± half the range).")
    print(body)
    if not args.no_write:
        key = "cross-family" if args.forgery == "blend" else "cross-family-only"
        write_section(key, f"Cross-family generalisation on synthetic forgeries ({args.forgery} fakes)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
