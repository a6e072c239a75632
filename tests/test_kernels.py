"""dfguard.kernels: every backend against the reference, the reference against SciPy, properties, bad input."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import scipy.fft
from kernel_cases import (
    CUDA_SIMULATED,
    INPUT_KINDS,
    OUTPUTS,
    SIMULATOR_KINDS,
    assert_matches,
    make_input,
    scipy_highpass,
    scipy_luma,
)

from dfguard.kernels import (
    BACKENDS,
    available_backends,
    block_operator,
    dct_highpass,
    dct_matrix,
    freq_vector,
    low_frequency_mask,
)

AVAILABLE = available_backends()
CPU_FAST = [b for b in ("numba",) if b in AVAILABLE]
GPU_REAL = [b for b in ("cupy", "numba-cuda") if b in AVAILABLE and not (b == "numba-cuda" and CUDA_SIMULATED)]


def needs(backend: str):
    """Skip marker for a backend that cannot run here."""
    return pytest.mark.skipif(backend not in AVAILABLE, reason=f"backend {backend!r} not available here")


# --- the reference and the operator tables --------------------------------------------------------------

def test_dct_matrix_is_orthonormal_and_matches_scipy():
    c = dct_matrix()
    np.testing.assert_allclose(c @ c.T, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(c, scipy.fft.dct(np.eye(8), axis=0, norm="ortho"), atol=1e-12)


@pytest.mark.parametrize("cutoff", range(9))
def test_spatial_projector_is_a_symmetric_projection_of_rank_cutoff_squared(cutoff):
    op = block_operator(cutoff, "spatial")
    a = op.left.astype(np.float64)
    np.testing.assert_allclose(a @ a, a, atol=1e-6)
    np.testing.assert_allclose(a, a.T, atol=1e-7)
    assert np.linalg.matrix_rank(np.kron(a, a), tol=1e-3) == cutoff * cutoff


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("cutoff", range(9))
def test_numba_even_odd_split_reproduces_the_operator(rng, output, cutoff):
    """The Numba kernel multiplies persymmetric operators (the spatial projectors) in halves: sums and
    differences of mirrored rows. The halves must give back ``M·x`` for both matrices of every operator (how the
    kernel's IR recombines them is checked by the backend-vs-reference tests)."""
    numba_cpu = pytest.importorskip("dfguard.kernels.numba_cpu")
    op = block_operator(cutoff, output)
    x = rng.standard_normal((8, 5))
    for matrix in (op.left, op.right.T):
        persymmetric = numba_cpu._is_persymmetric(matrix)
        assert persymmetric == (output == "spatial")
        if persymmetric:
            even, odd = numba_cpu._persymmetric_lanes(matrix)[..., 0].astype(np.float64)
            top, bottom = even @ (x[:4] + x[:3:-1]), odd @ (x[:4] - x[:3:-1])
            np.testing.assert_allclose(np.vstack([top + bottom, (top - bottom)[::-1]]), matrix @ x, atol=1e-5)


@pytest.mark.parametrize("kind", list(INPUT_KINDS))
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("cutoff", [0, 1, 4, 7, 8])
def test_reference_matches_scipy(rng, kind, output, cutoff):
    x = make_input(rng, *INPUT_KINDS[kind])
    assert_matches(dct_highpass(x, cutoff=cutoff, output=output, backend="numpy"), scipy_highpass(x, cutoff, output))


# --- every backend against the reference ----------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numba", "cupy", "numba-cuda"] if not CUDA_SIMULATED else ["numba", "cupy"])
@pytest.mark.parametrize("kind", list(INPUT_KINDS))
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("cutoff", range(1, 9))
def test_backend_matches_reference(rng, backend, kind, output, cutoff):
    if backend not in AVAILABLE:
        pytest.skip(f"backend {backend!r} not available here")
    x = make_input(rng, *INPUT_KINDS[kind])
    expected = dct_highpass(x, cutoff=cutoff, output=output, backend="numpy")
    assert_matches(dct_highpass(x, cutoff=cutoff, output=output, backend=backend), expected)


@pytest.mark.skipif(not CUDA_SIMULATED, reason="the real GPU runs the full matrix above")
@needs("numba-cuda")
@pytest.mark.parametrize("kind", list(SIMULATOR_KINDS))
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("cutoff", [pytest.param(1, marks=pytest.mark.slow), 4,
                                    pytest.param(8, marks=pytest.mark.slow)])
def test_numba_cuda_in_simulator_matches_reference(rng, kind, output, cutoff):
    """Every simulated GPU thread is a Python thread (about 1 s a case): the inner loop runs cutoff 4, make test
    the edges too."""
    x = make_input(rng, *SIMULATOR_KINDS[kind])
    expected = dct_highpass(x, cutoff=cutoff, output=output, backend="numpy")
    assert_matches(dct_highpass(x, cutoff=cutoff, output=output, backend="numba-cuda"), expected)


@pytest.mark.parametrize("backend", ["numpy", *CPU_FAST])
def test_auto_picks_a_cpu_backend_for_numpy_input_and_agrees(rng, backend):
    x = make_input(rng, (2, 24, 24), "uint8")
    np.testing.assert_allclose(dct_highpass(x), dct_highpass(x, backend=backend), atol=1e-4)


# --- properties -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", *CPU_FAST])
@pytest.mark.parametrize("kind", ["u8-gray", "f32-rgb-odd", "u8-rgb"])
def test_cutoff_zero_spatial_returns_the_input(rng, backend, kind):
    x = make_input(rng, *INPUT_KINDS[kind])
    np.testing.assert_allclose(dct_highpass(x, cutoff=0, backend=backend), scipy_luma(x), atol=1e-4)


@pytest.mark.parametrize("backend", ["numpy", *CPU_FAST])
@pytest.mark.parametrize("cutoff", range(1, 9))
def test_spatial_result_has_no_energy_in_masked_coefficients(rng, backend, cutoff):
    x = make_input(rng, (2, 32, 40), "uint8")
    result = dct_highpass(x, cutoff=cutoff, backend=backend).astype(np.float64)
    blocks = result.reshape(2, 4, 8, 5, 8).swapaxes(-3, -2)
    coefficients = scipy.fft.dctn(blocks, axes=(-2, -1), norm="ortho")
    mask = low_frequency_mask(cutoff)
    assert np.abs(coefficients[..., mask]).max() < 1e-3
    if cutoff < 8:  # the rest of the spectrum survives untouched
        original = scipy.fft.dctn(x.astype(np.float64).reshape(2, 4, 8, 5, 8).swapaxes(-3, -2), axes=(-2, -1),
                                  norm="ortho")
        np.testing.assert_allclose(coefficients[..., ~mask], original[..., ~mask], atol=1e-3)


@pytest.mark.parametrize("backend", ["numpy", *CPU_FAST])
def test_masked_coefficients_are_exactly_zero(rng, backend):
    x = make_input(rng, (2, 24, 32), "float32")
    out = dct_highpass(x, cutoff=5, output="coefficients", backend=backend)
    blocks = out.reshape(2, 3, 8, 4, 8).swapaxes(-3, -2)
    assert np.all(blocks[..., low_frequency_mask(5)] == 0.0)
    assert np.all(blocks[..., ~low_frequency_mask(5)] != 0.0)


@pytest.mark.parametrize("backend", ["numpy", *CPU_FAST])
def test_constant_image_has_no_high_frequencies(backend):
    x = np.full((2, 21, 35), 173, np.uint8)
    assert np.abs(dct_highpass(x, cutoff=1, backend=backend)).max() < 1e-3


# --- bad input ------------------------------------------------------------------------------------------

CPU_AND_SIM = ["numpy", *CPU_FAST, *(["numba-cuda"] if "numba-cuda" in AVAILABLE else [])]


@pytest.mark.parametrize("backend", CPU_AND_SIM)
@pytest.mark.parametrize("dtype", ["float64", "int16", "uint16", "bool"])
def test_wrong_dtype_is_a_type_error(backend, dtype):
    with pytest.raises(TypeError, match=rf"uint8 or float32.*{dtype}"):
        dct_highpass(np.zeros((16, 16), dtype), backend=backend)


@pytest.mark.parametrize("backend", CPU_AND_SIM)
@pytest.mark.parametrize("shape", [(64,), (7, 64), (64, 7), (2, 4, 100, 3), ()])
def test_bad_shape_is_a_value_error(backend, shape):
    with pytest.raises(ValueError, match="at least"):
        dct_highpass(np.zeros(shape, np.uint8), backend=backend)


@pytest.mark.parametrize("backend", CPU_AND_SIM)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_a_value_error_naming_the_image(backend, bad):
    x = np.zeros((2, 16, 16), np.float32)  # the bad pixel in the second image
    x[1, 9, 3] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite.*image 1"):
        dct_highpass(x, backend=backend)


@pytest.mark.parametrize("backend", ["numpy", *CPU_FAST])
def test_non_contiguous_input_is_handled(rng, backend):
    base = make_input(rng, (2, 48, 80, 3), "uint8")
    views = [base[:, ::2, 1::2], base.transpose(0, 2, 1, 3), base[..., ::-1]]
    for view in views:
        assert not view.flags.c_contiguous
        np.testing.assert_array_equal(dct_highpass(view, backend=backend),
                                      dct_highpass(np.ascontiguousarray(view), backend=backend))


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"cutoff": 9}, ValueError, "cutoff must be in 0..8"),
    ({"cutoff": -1}, ValueError, "cutoff must be in 0..8"),
    ({"cutoff": 2.5}, TypeError, "cutoff must be an int"),
    ({"cutoff": True}, TypeError, "cutoff must be an int"),
    ({"output": "frequency"}, ValueError, "output must be one of"),
    ({"backend": "opencl"}, ValueError, "unknown backend 'opencl'"),
])
def test_bad_options_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        dct_highpass(np.zeros((16, 16), np.uint8), **kwargs)


def test_non_array_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"numpy\.ndarray"):
        dct_highpass([[0] * 16] * 16, backend="numpy")


def test_gpu_array_on_a_cpu_backend_is_a_type_error():
    class FakeDeviceArray:
        def __init__(self) -> None:
            self.__cuda_array_interface__ = {"shape": (16, 16), "typestr": "|u1", "data": (0, False), "version": 3}
            self.shape, self.dtype = (16, 16), np.dtype(np.uint8)

    with pytest.raises(TypeError, match="lives on the GPU"):
        dct_highpass(FakeDeviceArray(), backend="numba")


@pytest.mark.skipif("cupy" in AVAILABLE, reason="CuPy runs here")
def test_unavailable_backend_says_what_is_available():
    with pytest.raises(RuntimeError, match=r"not available here.*numpy"):
        dct_highpass(np.zeros((16, 16), np.uint8), backend="cupy")


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_registered_backend_runs_or_says_it_cannot(rng, backend):
    x = make_input(rng, (2, 16, 24), "uint8")
    if backend in AVAILABLE:
        assert_matches(dct_highpass(x, backend=backend), scipy_highpass(x, 4, "spatial"))
    else:
        with pytest.raises(RuntimeError, match=rf"{backend!r} is not available here"):
            dct_highpass(x, backend=backend)
    assert {"numpy", "numba"} <= set(AVAILABLE)  # the CPU backends run on every machine


# --- freq_vector ----------------------------------------------------------------------------------------

def scipy_freq_vector(x: np.ndarray) -> np.ndarray:
    """The documented recipe, computed with SciPy: log(1+|DCT|) mean and std over blocks per frequency."""
    coefficients = scipy_highpass(_pad_to_blocks(x), 0, "coefficients")
    h, w = coefficients.shape[-2:]
    blocks = coefficients.reshape(*coefficients.shape[:-2], h // 8, 8, w // 8, 8)
    amplitude = np.log1p(np.abs(blocks))
    mean = amplitude.mean(axis=(-4, -2)).reshape(*coefficients.shape[:-2], 64)
    std = amplitude.std(axis=(-4, -2)).reshape(*coefficients.shape[:-2], 64)
    return np.concatenate([mean, std], axis=-1)


def _pad_to_blocks(x: np.ndarray) -> np.ndarray:
    rgb = x.ndim >= 3 and x.shape[-1] == 3
    h, w = x.shape[-3:-1] if rgb else x.shape[-2:]
    pad = [(0, -h % 8), (0, -w % 8)] + ([(0, 0)] if rgb else [])
    return np.pad(x, [(0, 0)] * (x.ndim - len(pad)) + pad, mode="edge")


@pytest.mark.parametrize("backend", ["numpy", *CPU_FAST])
@pytest.mark.parametrize(("shape", "dtype"), [((64, 64), "uint8"), ((3, 37, 50), "float32"),
                                               ((2, 2, 40, 44, 3), "uint8")])
def test_freq_vector_matches_scipy_recipe(rng, backend, shape, dtype):
    x = make_input(rng, shape, dtype)
    vector = freq_vector(x, backend=backend)
    lead = shape[:-3] if shape[-1] == 3 else shape[:-2]
    assert vector.shape == (*lead, 128) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, scipy_freq_vector(x), rtol=1e-5, atol=1e-5)


def test_freq_vector_sees_high_frequencies(rng):
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (64, 1))
    noisy = smooth + rng.normal(0, 20, smooth.shape).astype(np.float32)
    high = (np.add.outer(np.arange(8), np.arange(8)) >= 8).ravel()
    assert freq_vector(noisy)[:64][high].mean() > freq_vector(smooth)[:64][high].mean() + 1.0


# --- the CUDA source and the GPU backends ---------------------------------------------------------------

@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_cuda_source_compiles_with_nvcc(tmp_path, arch):
    from dfguard.kernels.cupy_backend import KERNEL_NAMES, SOURCE

    ptx = tmp_path / "dct8x8.ptx"
    subprocess.run(["nvcc", "--ptx", f"-arch={arch}", "-std=c++14", str(SOURCE), "-o", str(ptx)], check=True,
                   capture_output=True, text=True)
    entries = ptx.read_text()
    for name in KERNEL_NAMES.values():
        assert f".entry {name}(" in entries


@pytest.mark.gpu
@needs("cupy")
def test_cupy_takes_and_returns_gpu_arrays(rng):
    import cupy

    x = make_input(rng, (4, 40, 48, 3), "uint8")
    gpu = cupy.asarray(x)
    out = dct_highpass(gpu)  # auto -> a GPU backend, no host round trip
    assert isinstance(out, cupy.ndarray)
    assert_matches(cupy.asnumpy(out), scipy_highpass(x, 4, "spatial"))
    vector = freq_vector(gpu, backend="cupy")
    assert isinstance(vector, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(vector), scipy_freq_vector(x), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@needs("cupy")
def test_cupy_takes_dlpack_tensors(rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no GPU")
    x = make_input(rng, (3, 24, 32), "float32")
    out = dct_highpass(torch.from_numpy(x).cuda(), backend="cupy")
    assert_matches(out.get(), scipy_highpass(x, 4, "spatial"))


@pytest.mark.gpu
@pytest.mark.parametrize("backend", GPU_REAL)
def test_gpu_backend_flags_nan(backend):
    import cupy

    x = cupy.zeros((2, 16, 16), cupy.float32)
    x[1, 3, 3] = cupy.nan
    with pytest.raises(ValueError, match="image 1"):
        dct_highpass(x, backend=backend)


# --- out= -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", *CPU_FAST])
def test_out_receives_the_result(rng, backend):
    x = make_input(rng, (2, 3, 24, 40, 3), "uint8")
    out = np.full((2, 3, 24, 40), np.nan, np.float32)
    returned = dct_highpass(x, backend=backend, out=out)
    assert returned is out
    assert_matches(out, scipy_highpass(x, 4, "spatial"))


@pytest.mark.parametrize("backend", ["numpy", *CPU_FAST])
@pytest.mark.parametrize(("out", "error"), [
    (np.empty((2, 24, 40), np.float64), ValueError),
    (np.empty((2, 24, 41), np.float32), ValueError),
    (np.empty((2, 40, 24), np.float32).transpose(0, 2, 1), ValueError),
    ([0.0], TypeError),
])
def test_bad_out_is_named(backend, out, error):
    with pytest.raises(error, match="out must be"):
        dct_highpass(np.zeros((2, 24, 40), np.uint8), backend=backend, out=out)
