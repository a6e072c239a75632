"""The workload the serving benchmarks share: synthetic test videos and a ``tiny`` model exported into a model
repository, built once into a folder and reused (``benchmarks/.workload/`` by default, git-ignored).

Speed does not depend on how well the model is trained, so the model gets one epoch per stage.
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
    from dfguard.faces.crop_config import CropConfig
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
