"""The synthetic data set and the tiny model that several test modules share (built once per session)."""

from __future__ import annotations

from pathlib import Path

from dfguard.train.demo import SEEN, UNSEEN  # the demo's split of the families: the tests train the same way

__all__ = ["SEEN", "UNSEEN", "build_prepared", "build_repository", "build_trained"]


def build_prepared(root: Path, seed: int = 0) -> Path:
    """Synthetic videos of all four families (drawn with ``seed``), cropped at 128 px (the tiny preset's size)."""
    from dfguard.faces.settings import CropConfig
    from dfguard.train.datasets import load_csv
    from dfguard.train.prepare import prepare_dataset
    from dfguard.train.synthetic import VideoSpec, make_dataset

    manifest = make_dataset(root / "videos", families=SEEN + UNSEEN, videos_per_class=10,
                            spec=VideoSpec(width=160, height=160, frames=10), seed=seed, progress=False)
    prepare_dataset(load_csv(manifest), root / "prepared", frames=8, config=CropConfig(size=128), progress=False)
    return root / "prepared"


def build_trained(prepared: Path, run: Path, seed: int = 0) -> Path:
    """The tiny preset trained on two families (3 + 2 epochs) with the given training seed."""
    from dfguard.train.config import load_preset
    from dfguard.train.trainer import Trainer

    overrides = (f"data.methods=[{', '.join(SEEN)}]", f"seed={seed}")
    Trainer(load_preset("tiny", overrides), prepared, run, progress=False).run()
    return run


def build_repository(trained: Path, repository: Path) -> Path:
    """A copy of the source tree's model repository with the trained model exported into it."""
    from dfguard.train.export import export_repository

    template = Path(__file__).resolve().parents[1] / "model_repository"
    export_repository(trained / "best.pt", repository, template=template)
    return repository
