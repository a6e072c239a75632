"""``dfguard demo`` / ``make demo``: the main job on one CPU machine, as far as it is built.

Synthetic data set → prepare → train the ``tiny`` preset → evaluate (metrics, ROC plot) → export the ONNX models.
Serving them in the CPU Triton ensemble and scoring the held-out videos over gRPC lands with the serving and
client issues; the demo says so at the end rather than pretending.
"""

from __future__ import annotations

from pathlib import Path

SEEN, UNSEEN = ("nearest", "transposed_conv"), ("bilinear", "pixel_shuffle")


def run_demo(out: Path, *, videos_per_class: int = 16, frames: int = 8, quick: bool = False) -> dict[str, Path]:
    """Run the demo into ``out``; returns the paths a person would open."""
    from dfguard.faces.crops import CropConfig
    from dfguard.train.config import load_preset
    from dfguard.train.datasets import load_csv
    from dfguard.train.evaluate import evaluate
    from dfguard.train.export import export_model
    from dfguard.train.prepare import prepare_dataset
    from dfguard.train.synthetic import VideoSpec, make_dataset
    from dfguard.train.trainer import Trainer

    out = Path(out)
    epochs = ("stage1.epochs=1", "stage2.epochs=1") if quick else ()
    print(f"1/5 synthetic videos: real ones from real photos, fakes of four families, into {out / 'videos'}")
    manifest = make_dataset(out / "videos", families=SEEN + UNSEEN, videos_per_class=videos_per_class,
                            spec=VideoSpec(width=160, height=160, frames=2 * frames))
    print("2/5 prepare: frames sampled over each video, BlazeFace, face and part crops")
    prepare_dataset(load_csv(manifest), out / "prepared", frames=frames, config=CropConfig(size=128))
    print(f"3/5 train the tiny preset on {' and '.join(SEEN)} (stage 1, then the cluster stage)")
    config = load_preset("tiny", (f"data.methods=[{', '.join(SEEN)}]", *epochs))
    best = Trainer(config, out / "prepared", out / "run").run()
    print("4/5 evaluate on the test split, seen and unseen families, clean and JPEG 50")
    evaluate(best, out / "prepared", out / "eval", jpeg=(50,))
    print((out / "eval" / "metrics.md").read_text(), end="")
    print("5/5 export the ONNX models for the ensemble (each checked against PyTorch)")
    export_model(best, out / "export")
    paths = {"ROC plot": out / "eval" / "roc.png", "metrics": out / "eval" / "metrics.json",
             "model": best, "ONNX models": out / "export", "TensorBoard logs": out / "run" / "tensorboard"}
    for name, path in paths.items():
        print(f"  {name}: {path}")
    print("Not built yet: serving these models in the CPU Triton ensemble and scoring the test videos over gRPC "
          "(the serving and client issues).")
    return paths
