"""A detector trained from real videos alone, end to end: prepare → train → calibrate → eval → export (→ serve).

    python -m benchmarks.real_self_blend DIR --out OUT [--preset real] [--variants full rgb_only freq_only]
                                         [--seeds 0 1 2] [--set KEY=VALUE ...] [--serve] [--no-write]

DIR is a folder of real videos (``dfguard prepare --dataset folder``: every video real, split by person where the
names tell, else by clip, into train/val/test). Every variant (``full``: the preset; ``rgb_only`` and
``freq_only``: the preset without its frequency or its RGB stream, the papers' ablation) trains once per seed with
``--fakes self-blend``, is calibrated on the validation clips' self-blends (the only fakes there are: the
calibration holds for self-blends, not for forgeries of other kinds), and is evaluated on

* the held-out (test) clips' self-blends: frame and video AUC;
* face swaps between the held-out clips, each beside its own real clip encoded alike (``benchmarks.swaps``): video
  AUC and the share of same-source pairs ranked right;
* the synthetic families of ``dfguard synth`` (real photos filmed by a virtual camera): another unseen domain;
* the held-out real clips: how many the calibrated fake threshold flags.

The first seed of ``full`` is exported with its calibration into ``OUT/repository`` (ready for ``dfguard
serve``); ``--serve`` starts it and scores the held-out clips and the swaps over gRPC. ``OUT/report.md`` holds the
tables. Everything under OUT is cut from DIR or trained on it: keep it out of the repository, never ship it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.results import write_section
from benchmarks.swaps import SwapPair, make_swaps, pair_accuracy

VARIANTS = {"full": (), "rgb_only": ("model.freq=null",), "freq_only": ("model.rgb=null",)}
TEMPLATE = Path(__file__).resolve().parents[1] / "model_repository"
SYNTHETIC_PER_CLASS = 8
FAKE_FPR = 0.01


@dataclass(frozen=True)
class Data:
    """The prepared folders a run is measured on, the held-out real clips and the swap pairs."""

    real: Path
    swaps: Path
    swap_videos: Path
    synthetic: Path
    pairs: list[SwapPair]
    held_out: list[Path]


@dataclass(frozen=True)
class RunResult:
    """One trained variant and seed, and what it scored."""

    variant: str
    seed: int
    checkpoint: Path
    train_seconds: float
    stage: int
    metrics: dict[str, float]


def prepare_data(folder: Path, out: Path, size: int, frames: int, group: str | None) -> Data:
    """Prepare the real clips, the swaps between the held-out ones and the synthetic families (each reused when
    already there)."""
    from dfguard.faces.settings import CropConfig
    from dfguard.train.datasets import load_csv, load_folder
    from dfguard.train.prepare import prepare_dataset
    from dfguard.train.synthetic import FAMILIES, make_dataset

    crop = CropConfig(size=size)
    records = load_folder(folder, group=group)
    prepare_dataset(records, out / "prepared", frames=frames, config=crop, workers=2)
    swap_videos, held_out = out / "swaps", [r for r in records if r.split == "test"]
    pairs = make_swaps(held_out, swap_videos, frames=frames)
    prepare_dataset(load_csv(swap_videos / "manifest.csv"), out / "swaps_prepared", frames=frames, config=crop,
                    workers=2)
    synthetic = out / "synthetic" / "manifest.csv"
    if not synthetic.is_file():
        make_dataset(synthetic.parent, families=tuple(FAMILIES), videos_per_class=SYNTHETIC_PER_CLASS,
                     splits={"test": 1.0})
    prepare_dataset(load_csv(synthetic), out / "synthetic_prepared", frames=frames, config=crop, workers=2)
    return Data(out / "prepared", out / "swaps_prepared", swap_videos, out / "synthetic_prepared", pairs,
                [r.path for r in held_out])


def measure(checkpoint: Path, data: Data, calibration_out: Path) -> tuple[dict[str, float], object, int]:
    """Calibrate on the validation self-blends, then every number of the report for one checkpoint; returns the
    numbers, the fitted ``CalibratedScores`` and the checkpoint's stage."""
    from dfguard.inference.checkpoint import load_model
    from dfguard.train.calibrate import calibrate
    from dfguard.train.evaluate import SplitScorer
    from dfguard.train.trainer import auc

    fitted = calibrate(checkpoint, data.real, calibration_out, self_blend=True, fake_fpr=FAKE_FPR,
                       progress=False).fitted
    trained = load_model(checkpoint)
    held_out = SplitScorer(trained, data.real, "test", self_blend=True).score(progress=False)
    video = held_out.per_video()
    scores = np.array([s for _, s, _, _ in video])
    labels = np.array([y for _, _, y, _ in video])
    flagged = fitted.calibration.apply(scores[labels == 0]) >= fitted.verdict.fake_at
    swaps = SplitScorer(trained, data.swaps, "test").score(progress=False)
    swap_scores = {video_id: score for video_id, score, _, _ in swaps.per_video()}
    synthetic_scores, synthetic_labels, _ = SplitScorer(trained, data.synthetic, "test").score(
        progress=False).by_video()
    swap_video_scores, swap_labels, _ = swaps.by_video()
    return {"self-blend frame AUC": auc(held_out.scores, held_out.labels),
            "self-blend video AUC": auc(scores, labels),
            "swap video AUC": auc(swap_video_scores, swap_labels),
            "swap pairs ranked right": pair_accuracy(data.pairs, swap_scores, data.swap_videos),
            "synthetic video AUC": auc(synthetic_scores, synthetic_labels),
            "held-out reals flagged": int(flagged.sum()), "held-out reals": len(flagged),
            "fake threshold": float(fitted.verdict.fake_at)}, fitted, trained.stage


def train_variant(variant: str, seed: int, data: Data, out: Path, preset: str, overrides: tuple[str, ...]
                  ) -> tuple[RunResult, object]:
    """Train (or reuse) one variant and seed and measure it."""
    from dfguard.train.config import load_preset
    from dfguard.train.trainer import Trainer

    run = out / "runs" / f"{variant}-seed{seed}"
    config = load_preset(preset, (*overrides, *VARIANTS[variant], "data.fakes=self-blend", f"seed={seed}"))
    start = time.perf_counter()
    timing = run / "train_seconds.json"
    if not (run / "best.pt").is_file():
        Trainer(config, data.real, run).run()
        timing.write_text(json.dumps(time.perf_counter() - start))
    seconds = json.loads(timing.read_text()) if timing.is_file() else float("nan")
    metrics, fitted, stage = measure(run / "best.pt", data, run / "calibration")
    return RunResult(variant, seed, run / "best.pt", seconds, stage, metrics), fitted


COLUMNS = ("self-blend frame AUC", "self-blend video AUC", "swap video AUC", "swap pairs ranked right",
           "synthetic video AUC")


def runs_table(results: list[RunResult]) -> str:
    """One row per run, then the mean over seeds of each variant."""
    header = ("| variant | seed | stage | train min | " + " | ".join(COLUMNS)
              + " | held-out reals flagged |\n|---|---:|---:|---:|" + "---:|" * (len(COLUMNS) + 1))
    lines = [header]
    for r in results:
        cells = " | ".join(f"{r.metrics[c]:.3f}" for c in COLUMNS)
        lines.append(f"| {r.variant} | {r.seed} | {r.stage} | {r.train_seconds / 60:.1f} | {cells} | "
                     f"{r.metrics['held-out reals flagged']}/{r.metrics['held-out reals']} |")
    for variant in dict.fromkeys(r.variant for r in results):
        chosen = [r for r in results if r.variant == variant]
        if len(chosen) > 1:
            cells = " | ".join(f"**{np.mean([r.metrics[c] for r in chosen]):.3f}** ± "
                               f"{np.std([r.metrics[c] for r in chosen]):.3f}" for c in COLUMNS)
            flagged = sum(r.metrics["held-out reals flagged"] for r in chosen)
            total = sum(r.metrics["held-out reals"] for r in chosen)
            lines.append(f"| **{variant}**, {len(chosen)} seeds |  |  |  | {cells} | {flagged}/{total} |")
    return "\n".join(lines)


def serve_and_score(repository: Path, data: Data, out: Path) -> str:
    """Start the exported repository and score the held-out clips and the swap pairs over gRPC; a summary line."""
    from dfguard.client.batch import RemoteScorer, score_files
    from dfguard.client.grpc_client import Connection
    from dfguard.client.results import ResultsFile
    from dfguard.serving.server import TritonServer

    held_out = data.held_out
    videos = held_out + [p.swap for p in data.pairs] + sorted({p.real for p in data.pairs})
    results = out / "served.jsonl"
    results.unlink(missing_ok=True)
    with TritonServer(repository.resolve()) as server:
        summary = score_files(videos, RemoteScorer(Connection(server.grpc_url, timeout=300)), results,
                              concurrency=2)
    records = {Path(r.path).resolve(): r for r in ResultsFile(results).read()}
    flagged = sum(records[p.resolve()].verdict == "fake" for p in held_out if p.resolve() in records)
    errors = sum(r.status == "error" for r in records.values())
    scores = {p.relative_to(data.swap_videos).as_posix(): records[p.resolve()].score for p in videos
              if p.is_relative_to(data.swap_videos) and records.get(p.resolve()) and records[p.resolve()].score
              is not None}
    return (f"Served over gRPC ({len(videos)} videos, {summary.rate:.2f} videos/s, {errors} errors): "
            f"{flagged} of {len(held_out)} held-out real clips get the verdict fake; swap pairs ranked right "
            f"{pair_accuracy(data.pairs, scores, data.swap_videos):.3f}.")


def main(argv: list[str] | None = None) -> int:
    """Run everything, write OUT/report.md and (unless --no-write) the RESULTS.md section."""
    from dfguard.train.config import load_preset
    from dfguard.train.export import export_repository
    from dfguard.train.prepare import read_manifest

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of real videos")
    parser.add_argument("--out", type=Path, required=True, help="working folder (keep it out of the repository)")
    parser.add_argument("--preset", default="real", help="the training preset (train/configs/)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["full"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the preset")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per clip")
    parser.add_argument("--group", help="regex telling which clips show one person (dfguard prepare --group)")
    parser.add_argument("--serve", action="store_true", help="serve the exported repository and score over gRPC")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args(argv)
    size = load_preset(args.preset, tuple(args.set)).model.image_size
    out = args.out
    data = prepare_data(args.folder, out, size, args.frames, args.group)
    results, exported = [], None
    for variant in args.variants:
        for seed in args.seeds:
            result, fitted = train_variant(variant, seed, data, out, args.preset, tuple(args.set))
            results.append(result)
            print(runs_table(results[-1:]))
            if exported is None and variant == "full":
                export_repository(result.checkpoint, out / "repository", template=TEMPLATE, calibrated=fitted)
                exported = result
    clips = len(read_manifest(data.real))
    body = (f"{runs_table(results)}\n\nPreset `{args.preset}`" + (f" with {' '.join(args.set)}" if args.set else "")
            + f", {args.frames} frames per clip, crops of {size} px; {clips} real clips of "
            f"`{args.folder.name}/` split by person or clip (70/15/15 %); {len(data.pairs)} swap pairs between the "
            f"held-out clips; {SYNTHETIC_PER_CLASS} synthetic real videos and as many fakes of each family. "
            "Calibrated on the validation clips' self-blends, fake threshold at "
            f"{FAKE_FPR:.0%} of their real clips.")
    if exported is not None:
        body += f" Exported: {exported.variant}, seed {exported.seed}, into `{out.name}/repository`."
        if args.serve:
            body += "\n\n" + serve_and_score(out / "repository", data, out)
    (out / "report.md").write_text(body + "\n")
    print(body)
    if not args.no_write:
        write_section("real-self-blend", "Trained from real videos alone (self-blended fakes), measured on real "
                      "faces", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
