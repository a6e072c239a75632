"""The workload the serving benchmarks share: synthetic test videos and a ``tiny`` model exported into a model
repository, built once into a folder and reused (``benchmarks/.workload/`` by default, git-ignored).

Speed does not depend on how well the model is trained, so the model gets one epoch per stage. Two sets of
videos: the small clips the model is trained on (320×240, 64 frames), and ``hd_videos``: uploads as phones and
the web make them (1280×720 and 1920×1080 H.264, 10 s at 25 or 30 fps, a keyframe every 1-2 s, one to three
people of varied sizes, one in three videos with a forged person).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dfguard.train.demo import SEEN, UNSEEN

DEFAULT_ROOT = Path(__file__).with_name(".workload")
TEMPLATE = Path(__file__).resolve().parents[1] / "model_repository"


@dataclass(frozen=True)
class Workload:
    """A trained checkpoint, the repository it is exported into, and the videos to score."""

    checkpoint: Path
    repository: Path
    videos: list[Path]


def build_workload(root: Path = DEFAULT_ROOT, *, videos: int = 16, width: int = 320, height: int = 240,
                   frames: int = 64) -> Workload:
    """Build (or reuse) the workload in ``root``: ``videos`` test videos of ``width×height``, ``frames`` long."""
    from dfguard.faces.settings import CropConfig
    from dfguard.train.config import load_preset
    from dfguard.train.datasets import load_csv
    from dfguard.train.export import export_repository
    from dfguard.train.prepare import prepare_dataset
    from dfguard.train.synthetic import VideoSpec, make_dataset
    from dfguard.train.trainer import Trainer

    root = Path(root)
    checkpoint, repository = root / "run" / "best.pt", root / "repository"
    manifest = root / "videos" / "manifest.csv"
    if not manifest.exists():
        # the test split is a fifth of each class and family: real and fake videos of four families
        per_class = max(5, round(5 * videos / (2 * len(SEEN + UNSEEN))))
        make_dataset(root / "videos", families=SEEN + UNSEEN, videos_per_class=per_class,
                     spec=VideoSpec(width=width, height=height, frames=frames))
    records = load_csv(manifest)
    if not checkpoint.exists():
        prepare_dataset(records, root / "prepared", frames=8, config=CropConfig(size=128))
        config = load_preset("tiny", (f"data.methods=[{', '.join(SEEN)}]", "stage1.epochs=1", "stage2.epochs=1"))
        Trainer(config, root / "prepared", root / "run").run()
    export_repository(checkpoint, repository, template=TEMPLATE)  # always: the configs may have changed
    test = [r.path for r in records if r.split == "test"]
    return Workload(checkpoint, repository, test[:videos])


def untrained_workload(root: Path, preset: str, *, servable: bool) -> Workload:
    """A checkpoint of ``preset`` with its initial weights (speed does not depend on them), in ``root / preset``,
    and, when the ensemble can serve it (``servable``), a repository it is exported into. No videos."""
    import torch

    from dfguard.config import to_dict
    from dfguard.inference.models import build_model
    from dfguard.train.config import load_preset
    from dfguard.train.export import export_repository

    folder = Path(root) / preset
    checkpoint, repository = folder / "best.pt", folder / "repository"
    if not checkpoint.exists():
        config = load_preset(preset)
        torch.manual_seed(0)
        state = {"config": to_dict(config), "model": build_model(config.model).state_dict(),
                 "progress": {"stage": 1}}  # stage 1: scored by its logit (untrained centres mean nothing)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(state, checkpoint)
    if servable:
        export_repository(checkpoint, repository, template=TEMPLATE, tolerance=1e-3)
    return Workload(checkpoint, repository, [])


HD_SIZES = ((1280, 720), (1920, 1080))


def hd_videos(root: Path = DEFAULT_ROOT, count: int = 6, seconds: float = 10.0) -> list[Path]:
    """Build (or reuse) ``count`` HD videos in ``root / "hd"``: sizes and frame rates alternate, keyframe
    intervals of 1-2 s, 1-3 people, every third video with one person forged by a family the model saw."""
    import numpy as np

    from dfguard.train.scenes import make_people_video
    from dfguard.train.synthetic import VideoSpec

    folder = Path(root) / "hd"
    paths = []
    for k in range(count):
        rng = np.random.default_rng(1000 + k)  # each video its own seed: a rerun rebuilds only what is missing
        width, height = HD_SIZES[k % len(HD_SIZES)]
        fps = (25, 30)[k // len(HD_SIZES) % 2]
        spec = VideoSpec(width=width, height=height, frames=round(seconds * fps), fps=fps, crf=23,
                         keyframe_interval=int(fps * rng.uniform(1.0, 2.0)))
        family = SEEN[k // 3 % len(SEEN)] if k % 3 == 2 else None
        path = folder / f"hd{k:02d}-{width}x{height}-{fps}fps-{family or 'real'}.mp4"
        if not path.exists():
            partial = path.with_suffix(".partial.mp4")
            make_people_video(partial, spec, rng, family=family)
            partial.replace(path)  # a crash never leaves a half-written video under the final name
        paths.append(path)
    return paths
