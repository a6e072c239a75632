"""TensorRT plans for the GPU variant: each exported ONNX graph → ``<step>/1/model.plan`` (FP16, one optimisation
profile over the batch: 1 / ``max_batch // 4`` / ``max_batch``, matching the configs' ``max_batch_size``).

Built with the TensorRT Python API when ``tensorrt`` imports, else with ``trtexec`` from ``PATH`` (NVIDIA's
containers have it). Without either, ``build_plan`` raises ``TensorRTMissingError``: nothing pretends to be a plan.
A plan only runs on the GPU model and TensorRT version that built it, so build on the serving machine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dfguard.errors import DfguardError

Shape = tuple[int, ...]


class TensorRTMissingError(DfguardError):
    """Neither the TensorRT Python package nor ``trtexec`` is installed here."""


def tensorrt_builder() -> str | None:
    """``"python"`` or ``"trtexec"``: how plans can be built on this machine, or None."""
    try:
        import tensorrt  # noqa: F401

        return "python"
    except ImportError:
        return "trtexec" if shutil.which("trtexec") else None


def require_tensorrt() -> str:
    """The available builder, or ``TensorRTMissingError`` saying what to install."""
    builder = tensorrt_builder()
    if builder is None:
        raise TensorRTMissingError("TensorRT is not installed (no `tensorrt` module, no `trtexec` on PATH), so no "
                              "TensorRT plans were built. Build them where they will run: in NVIDIA's Triton "
                              "container (25.10+) on the serving GPU, `dfguard export CHECKPOINT --repository DIR "
                              "--target gpu`, or install tensorrt-cu12 there.")
    return builder


def batch_profile(onnx_path: Path, max_batch: int) -> dict[str, tuple[Shape, Shape, Shape]]:
    """Min/opt/max shapes of every graph input: the dynamic batch dimension from 1 over ``max_batch // 4`` to
    ``max_batch``, every other dimension as fixed in the graph."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    profile = {}
    for tensor in model.graph.input:
        dims = tensor.type.tensor_type.shape.dim
        fixed = [d.dim_value for d in dims[1:]]
        if any(v <= 0 for v in fixed):
            raise ValueError(f"{onnx_path.name}: input {tensor.name} has a dynamic dimension besides the batch")
        profile[tensor.name] = tuple((batch, *fixed) for batch in (1, max(1, max_batch // 4), max_batch))
    return profile


def build_plan(onnx_path: Path, plan_path: Path, *, max_batch: int, fp16: bool = True) -> Path:
    """Build one plan from an ONNX graph (see the module docstring)."""
    builder = require_tensorrt()
    profile = batch_profile(onnx_path, max_batch)
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    if builder == "python":
        _build_with_python_api(onnx_path, plan_path, profile, fp16)
    else:
        subprocess.run(trtexec_command(onnx_path, plan_path, profile, fp16), check=True)
    return plan_path


def trtexec_command(onnx_path: Path, plan_path: Path, profile: dict[str, tuple[Shape, Shape, Shape]],
                    fp16: bool) -> list[str]:
    """The ``trtexec`` command line building ``plan_path`` with ``profile``."""
    def shapes(k: int) -> str:
        return ",".join(f"{name}:{'x'.join(map(str, bounds[k]))}" for name, bounds in profile.items())

    return ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={plan_path}", f"--minShapes={shapes(0)}",
            f"--optShapes={shapes(1)}", f"--maxShapes={shapes(2)}", *(["--fp16"] if fp16 else [])]


def _build_with_python_api(onnx_path: Path, plan_path: Path, profile: dict[str, tuple[Shape, Shape, Shape]],
                           fp16: bool) -> None:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch: the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(k)) for k in range(parser.num_errors))
        raise DfguardError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    optimisation = builder.create_optimization_profile()
    for name, (low, best, high) in profile.items():
        optimisation.set_shape(name, low, best, high)
    config.add_optimization_profile(optimisation)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise DfguardError(f"TensorRT failed to build a plan from {onnx_path.name} (see its log above)")
    plan_path.write_bytes(bytes(serialized))
