"""``dfguard demo`` / ``make demo``: the main job on one CPU machine.

Synthetic data set → prepare → train the ``tiny`` preset → evaluate (metrics, ROC plot) → export into a model
repository → serve the ``deepfake_video`` ensemble (CPU variant) in a real tritonserver → score the held-out
videos over gRPC and report their AUC.
"""

from __future__ import annotations

from pathlib import Path

from dfguard.scoring import VERDICTS

SEEN, UNSEEN = ("nearest", "transposed_conv"), ("bilinear", "pixel_shuffle")


def score_over_grpc(repository: Path, records: list, num_frames: int = 8) -> Path:
    """Start tritonserver on the repository, score each video over gRPC, print verdicts and the video AUC, and
    write ``served_scores.csv`` next to the repository."""
    import csv

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from dfguard.client import DeepfakeClient
    from dfguard.serving.server import TritonServer

    rows = []
    with TritonServer(repository.resolve()) as server, DeepfakeClient(server.grpc_url, timeout=120) as client:
        for record in records:
            result = client.score_video(record.path, num_frames)
            rows.append((record.video_id, record.method, record.label, result.score, result.verdict))
    path = repository.parent / "served_scores.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("video", "method", "label", "video_score", "verdict"), *rows])
    labels, scores = [r[2] for r in rows], [r[3] for r in rows]
    verdicts = {v: sum(r[4] == v for r in rows) for v in VERDICTS}
    scored = [(y, p) for y, p in zip(labels, scores, strict=True) if not np.isnan(p)]
    auc = roc_auc_score(*zip(*scored, strict=True)) if len({y for y, _ in scored}) == 2 else float("nan")
    print(f"  {len(rows)} test videos scored over gRPC: video AUC {auc:.3f}; verdicts {verdicts}")
    return path


def run_demo(out: Path, *, videos_per_class: int = 16, frames: int = 8, quick: bool = False,
             template: Path = Path("model_repository")) -> dict[str, Path]:
    """Run the demo into ``out`` (``template``: the source tree's model repository); returns the paths a person
    would open."""
    from dfguard.faces.settings import CropConfig
    from dfguard.train.config import load_preset
    from dfguard.train.datasets import load_csv
    from dfguard.train.evaluate import evaluate
    from dfguard.train.export import export_repository
    from dfguard.train.prepare import prepare_dataset
    from dfguard.train.synthetic import VideoSpec, make_dataset
    from dfguard.train.trainer import Trainer

    out = Path(out)
    epochs = ("stage1.epochs=1", "stage2.epochs=1") if quick else ()
    print(f"1/6 synthetic videos: real ones from real photos, fakes of four families, into {out / 'videos'}")
    manifest = make_dataset(out / "videos", families=SEEN + UNSEEN, videos_per_class=videos_per_class,
                            spec=VideoSpec(width=160, height=160, frames=2 * frames))
    print("2/6 prepare: frames sampled over each video, BlazeFace, face and part crops")
    prepare_dataset(load_csv(manifest), out / "prepared", frames=frames, config=CropConfig(size=128))
    print(f"3/6 train the tiny preset on {' and '.join(SEEN)} (stage 1, then the cluster stage)")
    config = load_preset("tiny", (f"data.methods=[{', '.join(SEEN)}]", *epochs))
    best = Trainer(config, out / "prepared", out / "run").run()
    print("4/6 evaluate on the test split, seen and unseen families, clean and JPEG 50")
    evaluate(best, out / "prepared", out / "eval", jpeg=(50,))
    print((out / "eval" / "metrics.md").read_text(), end="")
    print("5/6 export the ONNX models into a model repository (each checked against PyTorch)")
    repository = out / "repository"
    export_repository(best, repository, template=template)
    print("6/6 serve the deepfake_video ensemble (CPU variant) and score the test videos over gRPC")
    served = score_over_grpc(repository, [r for r in load_csv(manifest) if r.split == "test"])
    paths = {"ROC plot": out / "eval" / "roc.png", "metrics": out / "eval" / "metrics.json",
             "model": best, "model repository": repository, "TensorBoard logs": out / "run" / "tensorboard",
             "served scores": served}
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return paths
