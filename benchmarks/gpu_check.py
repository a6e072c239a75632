"""The GPU half, checked and measured in one command on a bare GPU machine (run from the checkout, no install).

    make gpu-check                      # = PYTHONPATH=. python3 -m benchmarks.gpu_check --out benchmarks/gpu_check
    python -m benchmarks.gpu_check --dry-run --out DIR     # on a CPU: the same script, small, simulated
    python -m benchmarks.gpu_check --record DIR            # merge DIR/sections.md into benchmarks/RESULTS.md

Steps, each recorded even when another fails:

1. ``kernels``: the ``cupy`` and real ``numba-cuda`` backends against the NumPy reference on the kernel tests'
   cases (``tests/kernel_cases.py``), plus GPU arrays in and out, DLPack tensors and NaN detection on the device.
2. ``kernel-bench``: images/s and % of the measured device-to-device copy bandwidth at batches 256, 1024, 4096,
   buffers rotated past the L2 cache (``benchmarks.kernels``' GPU cases).
3. ``dct-step``: the ``dct_highpass`` Triton step's ``KIND_GPU`` code (CuPy in, DLPack out) on a batch of faces,
   outside Triton (a stand-in for ``triton_python_backend_utils`` carries its tensors), against the CPU kernel.
4. ``models``: the ``dual_stream`` and ``full`` presets (EfficientNet-B4, 256 px, random weights) in PyTorch with
   FP16 autocast at batch 32/128/256: faces/s of the RGB, frequency and fusion streams, the ceiling a TensorRT
   plan should beat.

It imports only what the GPU machine has (torch, timm, CuPy, numba-cuda, NumPy 2, SciPy, OpenCV): no PyAV, mediapipe,
pytriton, tritonclient, DALI or TensorRT. ``--dry-run`` runs every step on a CPU at small sizes: Numba's CUDA
simulator stands in for numba-cuda, CuPy's parts are reported as skipped, the models run in float32.
Results: ``DIR/gpu_check.json`` (everything), ``DIR/sections.md`` (RESULTS.md sections), the summary printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "gpu_check"
GPU_BATCHES = (256, 1024, 4096)
MODEL_PRESETS = ("dual_stream", "full")
MODEL_BATCHES = (32, 128, 256)
TIME_LIMIT_S = 8 * 60


@dataclass
class StepResult:
    """One step's outcome (``passed`` or ``failed``), what it found and how long it took."""

    name: str
    status: str = "passed"
    detail: list[str] = field(default_factory=list)
    markdown: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class Settings:
    """What a run measures: the real sizes on a GPU, small ones in the dry run."""

    dry_run: bool
    kernel_kinds: dict[str, tuple[tuple[int, ...], str]]  # name -> (shape, dtype), from tests/kernel_cases.py
    kernel_cutoffs: tuple[int, ...]
    bench_batches: tuple[int, ...]
    bench_size: int
    bench_rounds: int
    model_batches: tuple[int, ...]
    model_rounds: int

    @classmethod
    def for_run(cls, dry_run: bool) -> Settings:
        """Full sizes on a GPU; the simulator's small cases and tiny batches in the dry run."""
        from kernel_cases import INPUT_KINDS, SIMULATOR_KINDS

        if dry_run:  # one cutoff: tests/test_kernels.py runs the simulator's whole matrix; this is the plumbing
            return cls(True, SIMULATOR_KINDS, (4,), (2,), 32, 1, (2,), 1)
        return cls(False, INPUT_KINDS, tuple(range(1, 9)), GPU_BATCHES, 256, 5, MODEL_BATCHES, 5)


# --- step 1: the GPU kernels against the reference ------------------------------------------------------

def gpu_backends(dry_run: bool) -> list[str]:
    """The GPU backends this run can exercise (numba-cuda runs in the simulator in the dry run)."""
    from dfguard.kernels import GPU_BACKENDS, available_backends

    return [b for b in available_backends() if b in GPU_BACKENDS and not (dry_run and b == "cupy")]


def check_kernels(settings: Settings) -> StepResult:
    """Every GPU backend against the NumPy reference on the kernel tests' cases, then device arrays in and out."""
    from kernel_cases import OUTPUTS, assert_matches, make_input

    from dfguard.kernels import dct_highpass

    result = StepResult("kernels")
    backends = gpu_backends(settings.dry_run)
    if "cupy" not in backends:
        result.detail.append("cupy: skipped (no GPU)" if settings.dry_run else "cupy: NOT available")
    rng = np.random.default_rng(0)
    for backend in backends:
        cases = failures = 0
        for kind, (shape, dtype) in settings.kernel_kinds.items():
            for output in OUTPUTS:
                for cutoff in settings.kernel_cutoffs:
                    x = make_input(rng, shape, dtype)
                    expected = dct_highpass(x, cutoff=cutoff, output=output, backend="numpy")
                    cases += 1
                    try:
                        assert_matches(dct_highpass(x, cutoff=cutoff, output=output, backend=backend), expected)
                    except AssertionError as error:
                        failures += 1
                        result.detail.append(f"{backend} {kind} {output} cutoff {cutoff}: {error}")
        result.data[backend] = {"cases": cases, "failures": failures}
        result.detail.append(f"{backend}: {cases - failures}/{cases} cases match the reference")
    device_failures = 0
    if "cupy" in backends:
        lines, device_failures = device_array_checks(rng)
        result.detail += lines
    failed = device_failures > 0 or any(v["failures"] for v in result.data.values())
    if not backends or (not settings.dry_run and len(backends) < 2):
        failed = True
        result.detail.append(f"expected both GPU backends, found {backends}")
    result.status = "failed" if failed else "passed"
    return result


def device_array_checks(rng: np.random.Generator) -> tuple[list[str], int]:
    """CuPy arrays in → CuPy out (no host round trip), torch CUDA tensors by DLPack, NaN found on the device:
    a line per check and the number that failed."""
    import cupy
    from kernel_cases import assert_matches, make_input

    from dfguard.kernels import dct_highpass, freq_vector

    lines, failures = [], 0

    def check(name: str, fn: Callable[[], None]) -> None:
        nonlocal failures
        try:
            fn()
            lines.append(f"{name}: ok")
        except Exception as error:  # recorded, not raised: the other checks still run
            failures += 1
            lines.append(f"{name}: FAILED ({type(error).__name__}: {error})")

    x = make_input(rng, (4, 40, 48, 3), "uint8")
    expected = dct_highpass(x, backend="numpy")

    def cupy_in_cupy_out() -> None:
        for backend in ("cupy", "numba-cuda"):
            out = dct_highpass(cupy.asarray(x), backend=backend)
            assert isinstance(out, cupy.ndarray), f"{backend} returned {type(out).__name__}"
            assert_matches(cupy.asnumpy(out), expected)
        vector = freq_vector(cupy.asarray(x), backend="cupy")
        np.testing.assert_allclose(cupy.asnumpy(vector), freq_vector(x, backend="numpy"), rtol=1e-5, atol=1e-5)

    def torch_by_dlpack() -> None:
        import torch

        out = dct_highpass(torch.from_numpy(x).cuda(), backend="cupy")
        assert_matches(cupy.asnumpy(out), expected)

    def nan_is_named() -> None:
        for backend in ("cupy", "numba-cuda"):
            bad = cupy.zeros((2, 16, 16), cupy.float32)
            bad[1, 3, 3] = cupy.nan
            try:
                dct_highpass(bad, backend=backend)
            except ValueError as error:
                assert "image 1" in str(error), str(error)
            else:
                raise AssertionError(f"{backend} accepted a NaN")

    check("CuPy arrays in, CuPy arrays out (cupy, numba-cuda, freq_vector)", cupy_in_cupy_out)
    check("torch CUDA tensor in by DLPack", torch_by_dlpack)
    check("NaN on the device is named (image 1)", nan_is_named)
    return lines, failures


# --- step 2: the GPU kernel benchmark -------------------------------------------------------------------

def bench_kernels(settings: Settings) -> StepResult:
    """images/s and % of the device copy per GPU backend and batch (simulated plumbing only in the dry run)."""
    from benchmarks.kernels import Case, gpu_cases, measure, table, time_group, verdicts
    from dfguard.kernels import dct_highpass

    result = StepResult("kernel-bench")
    backends = gpu_backends(settings.dry_run)
    if not backends:
        return StepResult("kernel-bench", "failed", ["no GPU backend available"])
    rng = np.random.default_rng(0)
    rows = []
    for batch in settings.bench_batches:
        host = rng.integers(0, 256, (batch, settings.bench_size, settings.bench_size), dtype=np.uint8)
        reference = measure([Case("numpy", batch, lambda h=host: dct_highpass(h, backend="numpy"), 0)], 1)["numpy"]
        if settings.dry_run:  # the simulator's speed means nothing: this proves the timing and table code runs
            source, target = host.copy(), np.empty_like(host)
            cases = [Case("memory copy (simulated run)", batch, lambda s=source, t=target: np.copyto(t, s),
                          host.size * 2),
                     *(Case(f"{b} (simulated)", batch, lambda h=host, n=b: dct_highpass(h, backend=n), host.size * 5)
                       for b in backends)]
        else:
            cases = gpu_cases(batch, settings.bench_size, backends, rng)
        rows += time_group(cases, settings.bench_rounds, reference)
    result.markdown = table(rows) + "\n\n" + "\n".join(f"- {v}" for v in verdicts(rows))
    result.data["rows"] = [{"case": c.name, "batch": c.batch, "images_per_s": c.batch / s, "vs_numpy": r,
                            "share_of_copy": share, "max_error": c.max_error} for c, s, r, share in rows]
    result.detail.append(f"{len(rows)} rows timed at batches {list(settings.bench_batches)}")
    return result


# --- step 3: the dct_highpass step's GPU path outside Triton ---------------------------------------------

class _StandInTensor:
    """What ``pb_utils.Tensor`` offers the step: host arrays (``as_numpy``) or device ones (DLPack)."""

    def __init__(self, name: str, array: Any, on_device: bool = False) -> None:
        self._name, self._array, self._on_device = name, array, on_device

    @classmethod
    def from_dlpack(cls, name: str, array: Any) -> _StandInTensor:
        """Keep the producer's object, as Triton keeps the DLPack capsule: no copy."""
        if not hasattr(array, "__dlpack__"):
            raise TypeError(f"{name}: {type(array).__name__} does not speak DLPack")
        return cls(name, array, on_device=array.__dlpack_device__()[0] != 1)

    def name(self) -> str:
        return self._name

    def is_cpu(self) -> bool:
        return not self._on_device

    def as_numpy(self) -> np.ndarray:
        if self._on_device:
            raise RuntimeError(f"{self._name} lives on the GPU: as_numpy() is refused, as in Triton")
        return np.asarray(self._array)

    def to_dlpack(self) -> Any:
        """A DLPack capsule, as Triton's ``Tensor.to_dlpack`` returns (not the producer's array)."""
        return self._array.__dlpack__()


def _stand_in_backend() -> types.ModuleType:
    """A ``triton_python_backend_utils`` that carries tensors between the step and this script."""
    module = types.ModuleType("triton_python_backend_utils")

    class InferenceResponse:
        def __init__(self, output_tensors: list[_StandInTensor] | None = None, error: Any = None) -> None:
            self.outputs = {t.name(): t for t in output_tensors or []}
            self.error = error

    class TritonError(Exception):
        INVALID_ARG = 3

        def __init__(self, message: str, code: int = 0) -> None:
            super().__init__(message)
            self.code = code

    module.Tensor = _StandInTensor
    module.InferenceResponse = InferenceResponse
    module.TritonError = TritonError
    module.get_input_tensor_by_name = lambda request, name: request.get(name)
    return module


@contextmanager
def stand_in_triton() -> Iterator[None]:
    """Install the stand-in backend module for the duration of the block."""
    previous = sys.modules.get("triton_python_backend_utils")
    sys.modules["triton_python_backend_utils"] = _stand_in_backend()
    try:
        yield
    finally:
        if previous is None:
            sys.modules.pop("triton_python_backend_utils", None)
        else:
            sys.modules["triton_python_backend_utils"] = previous


def _step_args(repository: Path, kind: str) -> dict[str, str]:
    """The ``args`` Triton hands ``initialize``, for the step in a repository whose spec sets cutoff 4."""
    from dfguard.faces.settings import CropConfig
    from dfguard.inference.spec import SPEC_FILE, ServingSpec

    ServingSpec("tiny", 2, "cluster", (0.0,), (1.0,), CropConfig(size=128), cutoff=4).write(repository / SPEC_FILE)
    config = {"parameters": {"threads": {"string_value": "1"}}}
    return {"model_config": json.dumps(config), "model_instance_kind": kind, "model_instance_device_id": "0",
            "model_repository": str(repository / "dct_highpass"), "model_version": "1"}


def check_dct_step(settings: Settings) -> StepResult:
    """The step's GPU path (or, in the dry run, its CPU path) on 3 requests of faces against the CPU kernel."""
    from kernel_cases import assert_matches

    from dfguard.inference.features import frequency_features
    from dfguard.serving.steps import DctHighpass

    result = StepResult("dct-step")
    gpu = not settings.dry_run
    rng = np.random.default_rng(0)
    size = 256 if gpu else 32
    requests_faces = [rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8) for n in (5, 1, 26)]
    expected = [frequency_features(faces, 4) for faces in requests_faces]  # NumPy in: the CPU (Numba) kernel
    with tempfile.TemporaryDirectory() as folder, stand_in_triton():
        step = DctHighpass()
        step.initialize(_step_args(Path(folder), "GPU" if gpu else "CPU"))
        if gpu:
            import cupy

            # the first request from host memory (face_crop on the CPU), the others already on the device
            inputs = [_StandInTensor("FACES", requests_faces[0])]
            inputs += [_StandInTensor.from_dlpack("FACES", cupy.asarray(f)) for f in requests_faces[1:]]
        else:
            inputs = [_StandInTensor("FACES", f) for f in requests_faces]
        responses = step.execute([{"FACES": tensor} for tensor in inputs])
    if len(responses) != len(inputs):
        return StepResult("dct-step", "failed", [f"{len(inputs)} requests, {len(responses)} responses"])
    for k, (response, (dct_map, vector)) in enumerate(zip(responses, expected, strict=True)):
        for name, reference in (("DCT_MAP", dct_map), ("FREQ_VECTOR", vector)):
            tensor = response.outputs[name]
            if gpu and tensor.is_cpu():
                result.status = "failed"
                result.detail.append(f"request {k} {name}: came back in host memory, not on the device")
                continue
            host = _to_host(tensor)
            try:
                if name == "DCT_MAP":
                    assert_matches(host, reference)
                else:
                    np.testing.assert_allclose(host, reference, rtol=1e-5, atol=1e-5)
            except AssertionError as error:
                result.status = "failed"
                result.detail.append(f"request {k} {name}: {error}")
    where = "KIND_GPU: CuPy in, DLPack out" if gpu else "KIND_CPU (dry run): NumPy in and out"
    result.detail.append(f"{where}; {sum(len(f) for f in requests_faces)} faces of {size}×{size} in 3 requests")
    return result


def _to_host(tensor: _StandInTensor) -> np.ndarray:
    """A response tensor's values in host memory."""
    if tensor.is_cpu():
        return tensor.as_numpy()
    import cupy

    return cupy.asnumpy(cupy.from_dlpack(tensor.to_dlpack()))


# --- step 4: the models in PyTorch ----------------------------------------------------------------------

def time_models(settings: Settings) -> StepResult:
    """faces/s of each stream of each preset at each batch (FP16 autocast on the GPU, float32 on a CPU)."""
    import torch

    from dfguard.inference.models import DeepfakeDetector
    from dfguard.train.config import load_preset

    device = torch.device("cpu" if settings.dry_run else "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    result = StepResult("models")
    rows = []
    for preset in MODEL_PRESETS:
        config = load_preset(preset).model
        model = DeepfakeDetector(config).to(device).eval()
        for batch in settings.model_batches:
            try:
                rows += _time_preset(model, config, batch, device, settings.model_rounds, preset)
            except torch.cuda.OutOfMemoryError:
                result.detail.append(f"{preset} batch {batch}: out of GPU memory")
                torch.cuda.empty_cache()
        del model
    lines = ["| preset | batch | stream | faces/s | ms per batch |", "|---|---:|---|---:|---:|"]
    lines += [f"| {r['preset']} | {r['batch']} | {r['stream']} | {r['faces_per_s']:,.0f} | {r['ms']:.2f} |"
              for r in rows]
    precision = "float32 on the CPU (dry run)" if settings.dry_run else "FP16 autocast"
    result.markdown = "\n".join(lines) + f"\n\nRandom weights, {precision}, inputs already on the device."
    result.data["rows"] = rows
    result.detail.append(f"{len(rows)} rows: presets {list(MODEL_PRESETS)}, batches {list(settings.model_batches)}")
    return result


def _time_preset(model: Any, config: Any, batch: int, device: Any, rounds: int, preset: str) -> list[dict]:
    """Median time of the RGB, frequency and fusion streams and of the whole model on one batch."""
    import torch

    size, part = config.image_size, config.part_size
    faces = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    parts = torch.randint(0, 256, (batch, 4, 3, part, part), dtype=torch.uint8, device=device)
    dct_map = torch.randn(batch, 1, size, size, device=device) * 30
    vector = torch.rand(batch, 128, device=device) * 4
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    autocast = torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda")
    with torch.inference_mode(), autocast:
        rgb = model.rgb_stream(faces, parts) if model.rgb_stream is not None else None
        freq = model.freq_stream(dct_map, vector) if model.freq_stream is not None else None
        empty = faces.new_zeros((batch, 0), dtype=torch.float32)
        calls = {"rgb_stream": (lambda: model.rgb_stream(faces, parts)) if rgb is not None else None,
                 "freq_stream": (lambda: model.freq_stream(dct_map, vector)) if freq is not None else None,
                 "fusion": lambda: model.fusion(rgb if rgb is not None else empty,
                                                freq if freq is not None else empty),
                 "whole model": lambda: model(faces, parts, dct_map, vector)}
        rows = []
        for stream, call in calls.items():
            if call is None:
                continue
            call()  # warm-up (cuDNN picks its algorithms here)
            times = []
            for _ in range(rounds):
                sync()
                start = time.perf_counter()
                call()
                sync()
                times.append(time.perf_counter() - start)
            seconds = float(np.median(times))
            rows.append({"preset": preset, "batch": batch, "stream": stream, "faces_per_s": batch / seconds,
                         "ms": seconds * 1e3})
    return rows


# --- the run ---------------------------------------------------------------------------------------------

STEPS: dict[str, Callable[[Settings], StepResult]] = {
    "kernels": check_kernels,
    "kernel-bench": bench_kernels,
    "dct-step": check_dct_step,
    "models": time_models,
}


def run_step(name: str, settings: Settings) -> StepResult:
    """One step, timed; an exception is that step's failure (with its traceback), not the run's end."""
    start = time.perf_counter()
    try:
        result = STEPS[name](settings)
    except Exception:
        result = StepResult(name, "failed", traceback.format_exc().strip().splitlines()[-12:])
    result.seconds = time.perf_counter() - start
    return result


def environment() -> dict[str, str]:
    """Versions and the device, for the record."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("torch", "timm", "cupy", "numba", "scipy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "absent"
    from benchmarks.results import machine_description

    versions["machine"] = machine_description()
    return versions


def sections(results: list[StepResult], env: dict[str, str], command: str, dry_run: bool) -> str:
    """The RESULTS.md sections of this run (``kernels-gpu`` and ``models-gpu``), markers included."""
    from benchmarks.results import render_section

    by_name = {r.name: r for r in results}
    suffix = " (dry run on a CPU: plumbing only)" if dry_run else ""
    kernel_body = "\n".join([
        "Correctness: " + "; ".join(by_name["kernels"].detail[-5:]) if "kernels" in by_name else "",
        "Triton step: " + "; ".join(by_name["dct-step"].detail) if "dct-step" in by_name else "", "",
        by_name["kernel-bench"].markdown if "kernel-bench" in by_name else ""])
    parts = [render_section("kernels-gpu", f"DCT kernels on the GPU, 256×256 uint8 crops{suffix}", kernel_body,
                            env["machine"], command, date.today().isoformat())]
    if "models" in by_name:
        parts.append(render_section("models-gpu", f"Models in PyTorch on the GPU (TensorRT's ceiling){suffix}",
                                    by_name["models"].markdown, env["machine"], command, date.today().isoformat()))
    return "\n\n".join(parts) + "\n"


def summary(results: list[StepResult]) -> str:
    """The table printed at the end: one row per step."""
    lines = ["| step | status | seconds | detail |", "|---|---|---:|---|"]
    for r in results:
        detail = "; ".join(r.detail[-3:]).replace("|", "/")
        lines.append(f"| {r.name} | {r.status} | {r.seconds:.1f} | {detail} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen steps (all by default), write the results under ``--out``, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for gpu_check.json and sections.md")
    parser.add_argument("--dry-run", action="store_true", help="on a CPU: simulator, small sizes, CuPy skipped")
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="merge DIR/sections.md (from a GPU run) into benchmarks/RESULTS.md and stop")
    args = parser.parse_args(argv)
    if args.record:
        from benchmarks.results import merge_sections

        merge_sections((args.record / "sections.md").read_text())
        print(f"recorded {args.record / 'sections.md'} in benchmarks/RESULTS.md")
        return 0
    if args.dry_run:  # before numba.cuda is first imported
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    sys.path.insert(0, str(ROOT / "tests"))  # kernel_cases: the kernel tests' inputs and tolerance

    settings = Settings.for_run(args.dry_run)
    started, results = time.perf_counter(), []
    for name in args.steps:
        print(f"[gpu-check] {name} ...", flush=True)
        results.append(run_step(name, settings))
        print(f"[gpu-check] {name}: {results[-1].status} in {results[-1].seconds:.1f} s", flush=True)
    elapsed = time.perf_counter() - started
    env = environment()
    from benchmarks.results import command_line

    args.out.mkdir(parents=True, exist_ok=True)
    record = {"environment": env, "seconds": elapsed, "dry_run": args.dry_run, "steps": [asdict(r) for r in results]}
    (args.out / "gpu_check.json").write_text(json.dumps(record, indent=2, default=str))
    (args.out / "sections.md").write_text(sections(results, env, command_line(), args.dry_run))
    print("\n" + summary(results))
    print(f"\n{elapsed:.0f} s in all (limit {TIME_LIMIT_S} s); " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(f"written: {args.out / 'gpu_check.json'}, {args.out / 'sections.md'}")
    if elapsed > TIME_LIMIT_S:
        print(f"took longer than {TIME_LIMIT_S} s: trim the sizes before the next GPU session")
    return 0 if all(r.status != "failed" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
