"""The ``dfguard`` command line: one sub-command per task, listed in ``COMMANDS``.

Only the chosen sub-command's options are built, so ``dfguard score --url`` runs on the core install; a part
of an extra that is not installed gets a message naming the extra (``dfguard.extras``). A user's error (a bad
argument, a missing file, a server that will not start) prints one line; anything else is a bug and keeps its
traceback, as every error does with ``--debug``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Command:
    """A sub-command: its help line, how it adds its arguments and what it runs (returns the exit code)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def add_no_arguments(parser: argparse.ArgumentParser) -> None:
    """For sub-commands without options."""


def run_backends(args: argparse.Namespace) -> int:
    """Print every DCT kernel backend and whether it can run here."""
    from dfguard.kernels import BACKENDS, available_backends

    available = set(available_backends())
    for name in BACKENDS:
        print(f"{name:<12} {'available' if name in available else 'not available'}")
    return 0


def add_dct_map_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard dct-map``."""
    parser.add_argument("image", type=Path, help="an RGB or grayscale image (PNG, JPEG)")
    parser.add_argument("-o", "--out", type=Path, default=Path("dct_map.png"), help="PNG to write")
    parser.add_argument("--cutoff", type=int, default=4, help="zero the cutoff×cutoff low frequencies (0..8)")
    parser.add_argument("--backend", default="auto", help="kernel backend (see `dfguard backends`)")


def run_dct_map(args: argparse.Namespace) -> int:
    """Write a figure of the image, its DCT high-pass map and its DCT amplitudes."""
    from dfguard.image import read_image
    from dfguard.visualize import plot_dct_map

    plot_dct_map(read_image(args.image), args.out, cutoff=args.cutoff, backend=args.backend, title=args.image.name)
    print(f"wrote {args.out}")
    return 0


def add_face_search_arguments(parser: argparse.ArgumentParser, *, tracks: bool = True) -> None:
    """How faces are found (and linked into tracks): the serving spec's ``detector`` and ``tracks``."""
    from dfguard.faces.settings import DetectorConfig, TrackConfig
    from dfguard.faces.weights import DETECTORS

    found, linked = DetectorConfig(), TrackConfig()
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=found.name,
                        help="BlazeFace model (full range: faces of any size, the default; short range: the CDNet "
                        "paper's selfie detector)")
    parser.add_argument("--min-face-px", type=float, default=found.min_face_px, help="find every face at least this "
                        "tall in frame pixels, at any resolution (the detector also runs on tiles)")
    parser.add_argument("--search-every", type=int, default=found.search_every, help="run the fine tiles on every "
                        "Nth sampled frame of a shot and its first and last (1: every frame); the frames between "
                        "get the whole frame and windows around the faces found on either side")
    if tracks:
        parser.add_argument("--max-faces", type=int, default=linked.max_faces, help="faces kept per frame, largest "
                            "first (more are capped, never an error)")
        parser.add_argument("--min-track-faces", type=int, default=linked.min_track_faces, help="faces a track "
                            "needs to count for the verdict (fewer: a possible false detection)")


def face_settings(args: argparse.Namespace) -> tuple[Any, Any]:
    """``DetectorConfig`` and ``TrackConfig`` from the options of ``add_face_search_arguments``."""
    from dfguard.faces.settings import DetectorConfig, TrackConfig

    tracks = TrackConfig(max_faces=args.max_faces, min_track_faces=args.min_track_faces) if hasattr(
        args, "max_faces") else TrackConfig()
    return DetectorConfig(name=args.detector, min_face_px=args.min_face_px, search_every=args.search_every), tracks


def add_faces_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard faces``."""
    parser.add_argument("image", type=Path, help="an image (PNG, JPEG)")
    parser.add_argument("-o", "--out", type=Path, default=Path("faces.png"), help="PNG to write")
    add_face_search_arguments(parser, tracks=False)


def run_faces(args: argparse.Namespace) -> int:
    """Detect faces, draw them and the crops the models see, and list them."""
    from dfguard.faces.search import detect_faces
    from dfguard.image import read_image
    from dfguard.visualize import plot_faces

    image, (detector, _) = read_image(args.image), face_settings(args)
    found = detect_faces(image, detector)  # what the service finds in this image
    plot_faces(image, args.out, title=args.image.name, detections=found)
    for face in found:
        box = ", ".join(f"{v:.0f}" for v in face.box)
        print(f"face score {face.score:.3f} box ({box})")
    print(f"wrote {args.out}")
    return 0


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard synth``."""
    from dfguard.train.synthetic import FAMILIES

    parser.add_argument("out", type=Path, help="folder for the videos and manifest.csv")
    parser.add_argument("--videos-per-class", type=int, default=8, help="real videos, and fakes per family")
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated, from {', '.join(FAMILIES)}")
    parser.add_argument("--frames", type=int, default=32, help="frames per video")
    parser.add_argument("--size", type=int, default=256, help="frame width and height in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (same seed, same videos)")
    parser.add_argument("--forgery", choices=("blend", "family-only"), default="blend", help="fakes: the face "
                        "blended with a resampled, colour-jittered copy; or the whole frame resampled, nothing else "
                        "(only the resampling trace tells them apart: the frequency stream's claim, tested honestly)")


def run_synth(args: argparse.Namespace) -> int:
    """Render synthetic real and self-blended fake videos with a manifest.csv."""
    from dfguard.train.synthetic import VideoSpec, make_dataset

    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    spec = VideoSpec(width=args.size, height=args.size, frames=args.frames)
    manifest = make_dataset(args.out, families=families, videos_per_class=args.videos_per_class, spec=spec,
                            seed=args.seed, forgery=args.forgery)
    print(f"wrote {manifest}")
    return 0


def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard prepare``."""
    from dfguard.train.datasets import FFPP_METHODS, LOADERS

    parser.add_argument("source", type=Path, help="the CSV file (--dataset csv), a folder of videos (--dataset "
                        "folder) or the data set's root folder")
    parser.add_argument("--dataset", choices=sorted(LOADERS), default="csv", help="how to read the source: a CSV "
                        "manifest (path,label[,split][,method]), a folder of real videos (every video under it), or "
                        "a data set's own layout under its root folder")
    parser.add_argument("--group", metavar="REGEX", help="csv without splits and folder: videos whose paths give "
                        "the same match (its first group, if any) share a split, e.g. a person id; by default a "
                        "person id the name tells (VoxCeleb id00012, MEAD M003), else the clip")
    parser.add_argument("--split-seed", type=int, default=0, help="csv without splits and folder: the draw of the "
                        "groups into train, val and test (70/15/15 %% of the videos)")
    parser.add_argument("--out", type=Path, required=True, help="folder for crops/ and manifest.jsonl")
    parser.add_argument("--split", action="append", default=[], metavar="NAME=FILE",
                        help="FaceForensics++ split file, e.g. train=splits/train.json (repeat for each split)")
    parser.add_argument("--compression", default="c23", help="FaceForensics++: raw, c23 or c40")
    parser.add_argument("--methods", default=",".join(FFPP_METHODS), help="FaceForensics++ methods, comma-separated")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled evenly over each video")
    parser.add_argument("--size", type=int, default=256, help="face crop side (a multiple of 8)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="videos prepared in parallel")
    parser.add_argument("--faces", choices=("largest", "all"), default="largest", help="largest: the largest face of "
                        "each frame (the papers' protocol); all: every face with its track id (for data sets "
                        "labelled per video, like DFDC)")
    add_face_search_arguments(parser)


def run_prepare(args: argparse.Namespace) -> int:
    """Crop faces of every video of a data set into ``--out``; resumable."""
    from dfguard.faces.settings import CropConfig
    from dfguard.train import datasets
    from dfguard.train.prepare import prepare_dataset, read_manifest

    if args.dataset == "faceforensics":
        splits = dict(item.split("=", 1) for item in args.split)
        if not splits:
            raise ValueError("FaceForensics++ needs its split files: --split train=train.json --split val=...")
        records = datasets.load_faceforensics(args.source, {k: Path(v) for k, v in splits.items()},
                                              compression=args.compression, methods=args.methods.split(","))
    elif args.dataset in ("csv", "folder"):
        records = datasets.LOADERS[args.dataset](args.source, group=args.group, seed=args.split_seed)
    else:
        records = datasets.LOADERS[args.dataset](args.source)
    detector, tracks = face_settings(args)
    prepare_dataset(records, args.out, frames=args.frames, config=CropConfig(size=args.size), workers=args.workers,
                    faces=args.faces, detector=detector, tracks=tracks)
    prepared = read_manifest(args.out)
    statuses, splits = [r.status for r in prepared], [r.split for r in prepared]
    print(f"{len(statuses)} videos in {args.out}: {statuses.count('ok')} ok, {statuses.count('no_face')} without "
          f"a face, {statuses.count('error')} unreadable (see the error field of manifest.jsonl); "
          + ", ".join(f"{splits.count(name)} {name}" for name in sorted(set(splits))))
    return 0


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard train``."""
    parser.add_argument("--config", required=True, help="a preset (tiny, dual_stream, cdnet, full, rgb_only, "
                        "freq_only) or a YAML file")
    parser.add_argument("--data", type=Path, required=True, help="a folder made by dfguard prepare")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, TensorBoard logs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set stage1.lr=3e-4 (checked like the file)")
    parser.add_argument("--fakes", choices=("dataset", "self-blend", "both"), help="the data set's fakes, fakes "
                        "self-blended from its real faces alone (no labelled fakes needed), or both (data.fakes)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CUDA when there is a GPU")
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    parser.add_argument("--verify-replicas", action="store_true",
                        help="under torchrun: check after every step that all ranks hold the same weights")


def run_train(args: argparse.Namespace) -> int:
    """Train (or resume) a model; prints the validation AUC of every epoch."""
    from dfguard.train.config import load_preset
    from dfguard.train.trainer import Trainer

    overrides = tuple(args.set) + ((f"data.fakes={args.fakes}",) if args.fakes else ())
    config = load_preset(args.config, overrides)
    best = Trainer(config, args.data, args.out, device=args.device, workers=args.workers,
                   verify_replicas=args.verify_replicas).run()
    if os.environ.get("RANK", "0") == "0":
        print(f"best model: {best}")
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard eval``."""
    parser.add_argument("checkpoint", type=Path, nargs="?", help="best.pt of a training run")
    parser.add_argument("--data", type=Path, help="a folder made by dfguard prepare")
    parser.add_argument("--out", type=Path, help="folder for metrics.json, metrics.md and the pictures (roc.png, "
                        "histogram.png; reliability.png with --calibration)")
    parser.add_argument("--summary", type=Path, nargs="+", metavar="METRICS_JSON",
                        help="instead of evaluating: merge metrics.json files into the papers' table "
                             "(rows = models, columns = data sets)")
    parser.add_argument("--split", default="test", help="the split of the prepared folder to evaluate")
    parser.add_argument("--jpeg", type=int, nargs="*", default=[], help="JPEG qualities to sweep, e.g. 90 70 50")
    parser.add_argument("--blur", type=float, nargs="*", default=[], help="Gaussian blur sigmas, e.g. 1 2 3")
    parser.add_argument("--calibration", type=Path, help="calibration.json from dfguard calibrate: also report its "
                        "calibration error (ECE) on this split")
    parser.add_argument("--self-blend", action="store_true", help="the split's real videos with their "
                        "self-blended copies as the fakes (for a folder of real videos, which has no other fake)")
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes")


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint; print the markdown table."""
    from dfguard.train.evaluate import evaluate, summarize

    if args.summary:
        print(summarize(args.summary), end="")
        return 0
    if not (args.checkpoint and args.data and args.out):
        raise ValueError("give a checkpoint, --data and --out (or --summary METRICS_JSON ...)")
    from dfguard.calibration import Calibration
    from dfguard.inference.spec import read_calibrated

    calibration = read_calibrated(args.calibration).calibration if args.calibration else Calibration()
    evaluate(args.checkpoint, args.data, args.out, split=args.split, jpeg=tuple(args.jpeg), blur=tuple(args.blur),
             workers=args.workers, calibration=calibration, self_blend=args.self_blend)
    print((args.out / "metrics.md").read_text(), end="")
    pictures = ", ".join(p.name for p in sorted(args.out.glob("*.png")))
    print(f"wrote {args.out / 'metrics.json'} and the pictures {pictures} in {args.out}")
    return 0


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard calibrate``."""
    parser.add_argument("checkpoint", type=Path, nargs="?", help="best.pt of a training run (not with --labels)")
    parser.add_argument("--data", type=Path, help="a folder made by dfguard prepare")
    parser.add_argument("--out", type=Path, required=True, help="folder for calibration.json, calibration.md, "
                        "reliability.png")
    parser.add_argument("--labels", type=Path, metavar="DECISIONS", help="instead of a checkpoint and data: the "
                        "decisions.jsonl of dfguard review, fitted against the served scores of --results")
    parser.add_argument("--results", type=Path, help="with --labels: the results.jsonl the decisions were made on")
    parser.add_argument("--spec", type=Path, help="with --labels: the served repository (or its serving_spec.json), "
                        "whose calibration and threshold gave those scores")
    parser.add_argument("--split", default="val", help="the split to fit on (not the one you report on)")
    parser.add_argument("--fake-fpr", type=float, default=0.01, help="share of real videos the fake verdict may "
                        "flag: its threshold is this operating point")
    parser.add_argument("--real-fnr", type=float, default=0.05, help="share of fake videos the real verdict may "
                        "pass: real at or below the score under which at most this many fakes fall")
    parser.add_argument("--fake-rate", type=float, help="share of fakes expected in use (default: the split's): "
                        "the probabilities are moved to it")
    parser.add_argument("--self-blend", action="store_true", help="the split's real videos with their "
                        "self-blended copies as the fakes (for a folder of real videos, which has no other fake)")
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes")


def run_calibrate(args: argparse.Namespace) -> int:
    """Fit the calibration and operating points; print the report."""
    if args.labels:
        if args.checkpoint or args.data or not (args.results and args.spec):
            raise ValueError("--labels takes --results and --spec (the served repository), not a checkpoint or --data")
        from dfguard.inference.spec import read_spec
        from dfguard.review import calibrate_from_decisions

        spec = read_spec(args.spec)
        print(calibrate_from_decisions(args.labels, args.results, spec.calibration, spec.verdict.fake_at, args.out,
                                       fake_fpr=args.fake_fpr, real_fnr=args.real_fnr, fake_rate=args.fake_rate),
              end="")
        print(f"wrote {args.out / 'calibration.json'} (dfguard export --calibration)")
        return 0
    if not args.checkpoint or not args.data:
        raise ValueError("calibrate needs a checkpoint and --data (or --labels with --results and --spec)")
    from dfguard.train.calibrate import calibrate

    calibrate(args.checkpoint, args.data, args.out, split=args.split, fake_fpr=args.fake_fpr,
              real_fnr=args.real_fnr, workers=args.workers, fake_rate=args.fake_rate, self_blend=args.self_blend)
    print((args.out / "calibration.md").read_text(), end="")
    print(f"wrote {args.out / 'calibration.json'} (dfguard export --calibration) and {args.out / 'reliability.png'}")
    return 0


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard export``."""
    parser.add_argument("checkpoint", type=Path, help="best.pt of a training run")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="folder for the ONNX files and serving_spec.json")
    target.add_argument("--repository", type=Path, help="a model repository (e.g. model_repository/) to place "
                        "the models in as <step>/1/model.onnx, ready for dfguard serve")
    parser.add_argument("--target", choices=("cpu", "gpu"), default="cpu",
                        help="with --repository: gpu also builds TensorRT plans (FP16; needs TensorRT)")
    parser.add_argument("--max-batch", type=int, default=256, help="largest batch the graphs accept")
    parser.add_argument("--no-detector", action="store_true", help="skip the face detector")
    parser.add_argument("--fake-at", type=float, default=0.6, help="video score at or above which the VERDICT is "
                        "fake (written into serving_spec.json)")
    parser.add_argument("--real-at", type=float, default=0.4, help="video score at or below which it is real; "
                        "between the two it is uncertain")
    parser.add_argument("--calibration", type=Path, help="calibration.json from dfguard calibrate: calibrated "
                        "probabilities, and verdict thresholds at its operating points (replace --fake-at/--real-at)")
    add_face_search_arguments(parser)


def run_export(args: argparse.Namespace) -> int:
    """Export a checkpoint as the ensemble's ONNX models; each is checked against PyTorch."""
    from dfguard.inference.spec import read_calibrated
    from dfguard.scoring import VerdictThresholds
    from dfguard.train.export import export_model, export_repository

    verdict = VerdictThresholds(fake_at=args.fake_at, real_at=args.real_at)
    calibrated = read_calibrated(args.calibration) if args.calibration else None
    detector, tracks = face_settings(args)
    if args.repository:  # without TensorRT, --target gpu raises before exporting: main() reports it, exit 2
        export_repository(args.checkpoint, args.repository, target=args.target, max_batch=args.max_batch,
                          verdict=verdict, faces=detector, tracks=tracks, calibrated=calibrated)
        print(f"placed the models{' and TensorRT plans' if args.target == 'gpu' else ''} and serving_spec.json "
              f"in {args.repository}: dfguard serve --repository {args.repository} --target {args.target}")
        return 0
    spec = export_model(args.checkpoint, args.out, max_batch=args.max_batch, detector=not args.no_detector,
                        verdict=verdict, faces=detector, tracks=tracks, calibrated=calibrated)
    print(f"wrote {', '.join(m + '.onnx' for m in spec.models)} and serving_spec.json to {args.out}")
    return 0


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard demo``."""
    from dfguard.train.demo import VIDEOS_PER_CLASS

    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="folder for everything it makes")
    parser.add_argument("--videos-per-class", type=int, default=VIDEOS_PER_CLASS, help="real videos, and fakes "
                        "per family, of the synthetic data set")
    parser.add_argument("--quick", action="store_true", help="one epoch per stage (a smoke test)")
    parser.add_argument("--repository-template", type=Path, default=Path("model_repository"),
                        help="the source tree's model repository (configs and model.py files)")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard serve``."""
    parser.add_argument("--repository", default="model_repository",
                        help="the model repository: a folder, or a URL Triton reads itself (s3://, gs://, as://)")
    parser.add_argument("--target", choices=("cpu", "gpu"), default="cpu",
                        help="cpu: configs/cpu.pbtxt (Python backend); gpu: config.pbtxt (DALI, TensorRT)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1 unless you mean it)")
    parser.add_argument("--http-host", help="address for HTTP (default --host; 127.0.0.1 with TLS)")
    parser.add_argument("--metrics-host", help="address for metrics (default --host; 127.0.0.1 with TLS)")
    parser.add_argument("--http-port", type=int, default=8000, help="Triton's HTTP/REST port")
    parser.add_argument("--grpc-port", type=int, default=8001, help="Triton's gRPC port (what clients use)")
    parser.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port")
    parser.add_argument("--admin-key-file", type=Path, help="file holding the admin key (e.g. a mounted Secret); "
                        "without it a new key is written, owner-only, into the cache folder; never printed")
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate: serve gRPC over TLS (with --tls-key)")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for every model to "
                        "load before giving up (TensorRT plans on a cold node take minutes)")


def _interrupt(*_: object) -> None:
    """SIGTERM handler: raise KeyboardInterrupt so the caller's ``finally`` stops the server outside the handler
    (stopping inside it would re-enter ``Popen.wait`` while the interrupted one holds its lock)."""
    raise KeyboardInterrupt


def run_serve(args: argparse.Namespace) -> int:
    """Start tritonserver securely, wait until ready, print the endpoints, stop on Ctrl-C or SIGTERM."""
    import signal

    from dfguard.paths import cache_dir
    from dfguard.serving.server import TritonServer, read_admin_key, write_admin_key

    repository = args.repository if "://" in args.repository else Path(args.repository).resolve()
    key_file = args.admin_key_file or cache_dir() / f"admin-key-{args.grpc_port}"
    admin_key = read_admin_key(key_file) if args.admin_key_file else write_admin_key(key_file)
    server = TritonServer(repository, host=args.host, model_config_name="cpu" if args.target == "cpu" else None,
                          ports=(args.http_port, args.grpc_port, args.metrics_port), admin_key=admin_key,
                          tls_cert=args.tls_cert, tls_key=args.tls_key, http_host=args.http_host,
                          metrics_host=args.metrics_host)
    signal.signal(signal.SIGTERM, _interrupt)  # unwind like Ctrl-C; stopping inside the handler would deadlock
    server.start(timeout=args.startup_timeout)
    print(f"tritonserver ready ({args.target} variant) — gRPC {server.grpc_url}, HTTP {server.http_url}, "
          f"metrics {server.metrics_url}", flush=True)
    print(f"admin APIs need the header {next(iter(server.admin_headers('http')))} "
          f"(gRPC: {next(iter(server.admin_headers('grpc')))}) with the key in {key_file}; log: {server.log}",
          flush=True)
    try:
        server.supervise()  # a model's stub that dies gets the server restarted on the same ports
    except KeyboardInterrupt:
        print("stopping")
    finally:
        server.stop()
    return 0 if server.process.returncode in (0, -signal.SIGTERM) else 1


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard score``."""
    parser.add_argument("paths", nargs="+", help="video/image files, folders (recursive), globs, or manifests "
                        "(.txt one path per line, .csv with a 'path' column)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", action="append", metavar="HOST:PORT",
                       help="a Triton gRPC endpoint (default 127.0.0.1:8001); repeat it to spread the requests over "
                       "several servers (least in flight; a server that fails has its requests resent to the "
                       "others); dns:///NAME:PORT round-robins over the addresses of NAME (a headless Service)")
    where.add_argument("--local", type=Path, metavar="CHECKPOINT",
                       help="score in this process with a training checkpoint (best.pt), no server (needs the "
                       "train extra)")
    where.add_argument("--merge", type=Path, nargs="+", metavar="SHARD_RESULTS",
                       help="score nothing: combine the results files of --shard runs over the same inputs into "
                       "--out, checking every input has exactly one record")
    parser.add_argument("--shard", metavar="I/N", help="score only the I-th (from 0) of N slices of the inputs, "
                        "chosen by a hash of each absolute path: N jobs with I = 0..N-1 cover the inputs once")
    parser.add_argument("--spec", type=Path, help="with --local: the serving_spec.json (or repository) exported "
                        "from that checkpoint, for its verdict thresholds")
    parser.add_argument("--out", type=Path, required=True, help="results.jsonl or results.csv: one record per "
                        "input (JSONL: every face and track nested; CSV: the top track); a rerun skips inputs "
                        "already in it")
    parser.add_argument("--per-face", action="store_true", help="CSV: one row per face (frame, box, track, score), "
                        "the input's columns repeated")
    parser.add_argument("--concurrency", "-n", type=int, default=4, help="requests in flight")
    parser.add_argument("--num-frames", type=int, default=None, help="frames per video (server default 32)")
    parser.add_argument("--flag-at", type=float, default=0.5, help="score at or above which an input is flagged "
                        "(the verdict's own thresholds are the model's, set at export)")
    parser.add_argument("--kind", choices=("all", "video", "image"), default="all",
                        help="which files to pick from folders and globs")
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline per request, seconds")
    parser.add_argument("--retries", type=int, default=5,
                        help="sends per request in all, over all servers, on UNAVAILABLE/DEADLINE_EXCEEDED")
    parser.add_argument("--ssl", action="store_true", help="TLS to the endpoint (e.g. behind a gateway)")
    parser.add_argument("--root-certificates", type=Path, help="PEM file of the CA to trust (with --ssl)")
    parser.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                        help="extra gRPC metadata on every call, e.g. authorization='Bearer ...' (repeatable)")
    parser.add_argument("--retry-errors", action="store_true",
                        help="score again the inputs whose record is an error (it is replaced, not duplicated)")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write a timeline of each track's scores with a "
                        "contact sheet of its faces for each input, and a histogram of the video scores, into DIR")
    parser.add_argument("--stream", action="store_true", help="score each video as the server reads it "
                        "(deepfake_stream): a line per chunk as soon as it is scored; the record is the final answer, "
                        "the same as without --stream")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_score(args: argparse.Namespace) -> int:
    """Score files over gRPC (or in-process); exit 1 when any input failed."""
    from dfguard.client.batch import RemoteScorer, plot_results, score_files, update_line
    from dfguard.client.grpc_client import Connection, RetryPolicy
    from dfguard.client.inputs import collect_inputs
    from dfguard.client.shards import merge_shards, parse_shard, select_shard

    if args.concurrency < 1 or args.retries < 1:
        raise ValueError(f"--concurrency and --retries must be at least 1, got {args.concurrency}, {args.retries}")
    malformed = [h for h in args.header if "=" not in h]
    if malformed:
        raise ValueError(f"--header takes NAME=VALUE, got {malformed}")
    kinds = ("video", "image") if args.kind == "all" else (args.kind,)
    paths = collect_inputs(args.paths, kinds)
    if args.spec and not args.local:
        raise ValueError("--spec goes with --local (a server answers with the spec it was exported with)")
    if args.stream and (args.local or args.merge):
        raise ValueError("--stream scores over gRPC: not with --local or --merge")
    if args.merge:
        if args.shard:
            raise ValueError("--merge combines all the shards: give it the inputs without --shard")
        counts = merge_shards(paths, args.merge, args.out, per_face=args.per_face)
        print(f"{sum(counts.values())} inputs, each with one record, from {len(args.merge)} shard files into "
              f"{args.out}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        return 1 if counts.get("error") else 0
    if args.shard:
        index, count = parse_shard(args.shard)
        total, paths = len(paths), select_shard(paths, index, count)
        print(f"shard {index}/{count}: {len(paths)} of {total} inputs")
    if args.local:
        from dfguard.pipeline import LocalScorer

        scorer = LocalScorer(args.local, args.num_frames, args.spec)
    else:
        urls = args.url or [Connection.url]  # the client's default endpoint
        connection = Connection(urls[0], timeout=args.timeout, retry=RetryPolicy(max_attempts=args.retries),
                                ssl=args.ssl, root_certificates=args.root_certificates,
                                headers=dict(h.split("=", 1) for h in args.header))
        scorer = RemoteScorer(connection, args.num_frames, urls,
                              on_update=(lambda name, update: print(update_line(name, update), flush=True))
                              if args.stream else None)
    summary = score_files(paths, scorer, args.out, concurrency=args.concurrency, flag_at=args.flag_at,
                          retry_errors=args.retry_errors, progress=not args.no_progress, per_face=args.per_face)
    print(summary.text(args.out))
    if args.plots:
        written = plot_results(args.out, args.plots, flag_at=args.flag_at, progress=not args.no_progress)
        print(f"{len(written)} plots in {args.plots}")
    return 1 if summary.failed else 0


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard watch``."""
    from dfguard.watch import WatchConfig

    defaults = WatchConfig()
    parser.add_argument("sources", nargs="*", metavar="SOURCE", help="anything FFmpeg opens live: rtsp://, rtmp://, "
                        "srt://, udp://, an HLS playlist (.m3u8), a device, or a file (read at its own pace); "
                        "several are watched at once")
    parser.add_argument("--sources-file", type=Path, help="more sources, one per line (# comments)")
    parser.add_argument("--shard", metavar="I/N", help="watch only the sources at positions I, I+N, I+2N, ... of "
                        "the list (pod I of N replicas)")
    parser.add_argument("--url", default="127.0.0.1:8001", help="the Triton gRPC endpoint")
    parser.add_argument("--window", type=float, default=defaults.window, help="seconds of the source per window")
    parser.add_argument("--frames", type=int, default=defaults.frames, help="frames scored per window")
    parser.add_argument("--fake-at", type=float, default=defaults.fake_at,
                        help="a track's window score at or above which it counts towards an alert")
    parser.add_argument("--alert-after", type=int, default=defaults.alert_after,
                        help="windows in a row at or above --fake-at before a track raises its alert")
    parser.add_argument("--queue", type=int, default=defaults.queue, help="windows waiting to be scored before "
                        "the oldest is dropped (scoring behind real time)")
    parser.add_argument("--source-timeout", type=float, default=defaults.open_timeout, help="seconds a source may "
                        "take to open or stay silent before it counts as dropped and is reopened")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    parser.add_argument("--webhook", help="POST each alert as JSON to this URL")
    parser.add_argument("--quiet", action="store_true", help="no lines on stdout (with --out or --webhook)")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline per window's request, seconds")


def run_watch(args: argparse.Namespace) -> int:
    """Watch live sources until they end (files), Ctrl-C or SIGTERM; a summary per source on stderr."""
    import signal

    from dfguard.client.grpc_client import DeepfakeClient
    from dfguard.client.shards import parse_shard
    from dfguard.watch import Sink, WatchConfig, read_sources, watch_all

    sources = list(args.sources) + (read_sources(args.sources_file) if args.sources_file else [])
    if args.shard:
        index, count = parse_shard(args.shard)
        sources = sources[index::count]
    if not sources:
        raise ValueError("no source to watch: give SOURCE or a --sources-file that lists some (for this --shard)")
    config = WatchConfig(window=args.window, frames=args.frames, fake_at=args.fake_at, alert_after=args.alert_after,
                         queue=args.queue, open_timeout=args.source_timeout)
    sink = Sink(args.out, args.webhook, stdout=not args.quiet, write=lambda text: print(text, flush=True))

    def scorer() -> Callable[[bytes, int], Any]:
        client = DeepfakeClient(args.url, timeout=args.timeout)  # one per watch: each scores from its own thread
        return lambda clip, frames: client.score_video(clip, frames)

    watches, wait = watch_all(sources, scorer, config, sink)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: [watch.stop() for watch in watches])
    try:
        summaries = wait()
    finally:
        sink.close()
    for source, summary in summaries.items():
        print(f"dfguard watch {source}: {summary.text()}", file=sys.stderr)
    return 0


def add_review_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard review``."""
    parser.add_argument("results", type=Path, help="the results.jsonl of dfguard score")
    parser.add_argument("--videos", type=Path, help="the folder the scored files are in (only files under it are "
                        "read, to draw their frames)")
    parser.add_argument("--decisions", type=Path, help="where decisions are appended (default: decisions.jsonl "
                        "beside the results)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8787, help="port (0: any free one)")
    parser.add_argument("--key-file", type=Path, help="file holding the key every request needs (default: a new "
                        "key, printed in the address)")
    parser.add_argument("--flag-at", type=float, default=0.5, help="the operating point a score is shown against")
    parser.add_argument("--who", default="moderator", help="the name decisions are recorded under when the form "
                        "leaves it empty")


def run_review(args: argparse.Namespace) -> int:
    """Serve the review page until Ctrl-C."""
    from dfguard.review import Review, new_key, serve

    if not args.results.is_file():
        raise FileNotFoundError(f"{args.results}: no such results file")
    if args.videos is not None and not args.videos.is_dir():
        raise FileNotFoundError(f"{args.videos}: no such folder")
    key = args.key_file.read_text().strip() if args.key_file else new_key()
    if len(key) < 16:
        raise ValueError(f"{args.key_file}: the key must be at least 16 characters")
    decisions = args.decisions or args.results.with_name("decisions.jsonl")
    try:
        serve(Review(args.results, args.videos, decisions, key, args.flag_at, args.who), args.host, args.port)
    except KeyboardInterrupt:
        print("stopping")
    return 0


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dfguard explain``."""
    from dfguard.video import DEFAULT_FRAMES

    parser.add_argument("video", type=Path, help="a video file")
    parser.add_argument("--checkpoint", type=Path, required=True, help="best.pt of a training run (scored in "
                        "this process: the embeddings are not served)")
    parser.add_argument("--spec", type=Path, help="the serving_spec.json (or repository) exported from that "
                        "checkpoint, for its calibration, verdict thresholds and face search settings")
    parser.add_argument("--out", type=Path, help="folder for the pictures (default: explain_<video name>)")
    parser.add_argument("--num-frames", type=int, default=DEFAULT_FRAMES, help="frames sampled over the video")


def run_explain(args: argparse.Namespace) -> int:
    """Score one video in process and draw its faces, track timeline, frequency view and embeddings."""
    from dfguard.explain import explain_video
    from dfguard.inference.spec import read_spec
    from dfguard.pipeline import LocalDetector

    detector = LocalDetector(args.checkpoint, read_spec(args.spec) if args.spec else None)
    out = args.out or Path(f"explain_{args.video.stem}")
    print(explain_video(detector, args.video, out, num_frames=args.num_frames).summary())
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """The main job on one CPU machine: synthetic data → prepare → train → evaluate → export."""
    from dfguard.train.demo import run_demo as demo

    if not (args.repository_template / "deepfake_video" / "config.pbtxt").is_file():
        raise FileNotFoundError(f"{args.repository_template} is not the model repository: run the demo from the "
                                "source tree (make demo) or pass --repository-template")
    demo(args.out, videos_per_class=args.videos_per_class, quick=args.quick, template=args.repository_template)
    return 0


COMMANDS: dict[str, Command] = {
    "backends": Command("list the DCT kernel backends and whether each can run here", add_no_arguments,
                        run_backends),
    "dct-map": Command("plot the blockwise DCT high-pass map of an image", add_dct_map_arguments, run_dct_map),
    "faces": Command("detect faces in an image and draw them with the crops the models see", add_faces_arguments,
                     run_faces),
    "synth": Command("render synthetic real and forged videos (for tests, the demo, augmentation)",
                     add_synth_arguments, run_synth),
    "prepare": Command("sample frames, crop faces and parts, write them with a manifest (resumable)",
                       add_prepare_arguments, run_prepare),
    "train": Command("train a detector on prepared data (resumable; torchrun for several processes)",
                     add_train_arguments, run_train),
    "eval": Command("evaluate a checkpoint: AUC, EER, AP, ACC per method, JPEG/blur sweeps, ROC plot",
                    add_eval_arguments, run_eval),
    "calibrate": Command("fit calibrated probabilities and verdict thresholds at chosen false-positive rates",
                         add_calibrate_arguments, run_calibrate),
    "export": Command("export a trained model as ONNX (streams, fusion, face detector) with parity checks",
                      add_export_arguments, run_export),
    "serve": Command("start tritonserver for the ensemble (127.0.0.1, model control none, admin APIs keyed)",
                     add_serve_arguments, run_serve),
    "score": Command("score videos and images over gRPC (or --local): one record per input, resumable",
                     add_score_arguments, run_score),
    "watch": Command("score a live source window by window; a JSON line per window, an alert when a forged face "
                     "stays", add_watch_arguments, run_watch),
    "review": Command("a local page to review scored videos and record decisions (fake/real/unsure)",
                      add_review_arguments, run_review),
    "explain": Command("draw why a video got its score: boxed faces, track timeline, DCT view, embeddings",
                       add_explain_arguments, run_explain),
    "demo": Command("run the end-to-end demo on one CPU machine", add_demo_arguments, run_demo),
}


def chosen_command(argv: list[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The argument parser: one sub-parser per command in ``COMMANDS``, with options only for the one chosen in
    ``argv`` (building another's could import what this install lacks)."""
    from dfguard import __version__

    parser = argparse.ArgumentParser(prog="dfguard", description="deepfake-guard: deepfake video detection",
                                     allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"dfguard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of every error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = chosen_command(argv)
    for name, cmd in COMMANDS.items():
        command_parser = sub.add_parser(name, help=cmd.help, description=cmd.help, allow_abbrev=False)
        add_command_arguments(command_parser, cmd, options=name == chosen)
    return parser


def add_command_arguments(parser: argparse.ArgumentParser, cmd: Command, *, options: bool = True) -> None:
    """A sub-command's ``--debug`` and, with ``options``, its own arguments."""
    # also after the command; SUPPRESS: an absent one must not reset a --debug given before it
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of every error")
    if options:
        cmd.add_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dfguard`` console script."""
    from dfguard.errors import DfguardError
    from dfguard.extras import missing_extra_message

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv  # until the arguments are parsed
    try:
        args = build_parser(argv).parse_args(argv)
        debug = args.debug
        return COMMANDS[args.command].run(args)
    except ModuleNotFoundError as error:
        message = missing_extra_message(error, f"dfguard {chosen_command(argv)}")
        if message is None or debug:
            raise
        print(f"dfguard: error: {message}", file=sys.stderr)
        return 2
    except (ValueError, OSError, DfguardError) as error:
        if debug:
            raise
        print(f"dfguard {chosen_command(argv)}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
