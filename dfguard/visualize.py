"""Pictures a person would rather look at than read: DCT maps (more plots land with training and scoring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfguard.kernels import BLOCK, dct_highpass, freq_vector


def load_rgb(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8 ``[H, W, 3]`` (grayscale is repeated, alpha dropped)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def plot_dct_map(image: np.ndarray, out: Path, *, cutoff: int = 4, backend: str = "auto", title: str = "") -> None:
    """Save a 4-panel PNG: the image, its DCT high-pass map, per-block coefficient amplitudes, and the mean
    log-amplitude of each of the 64 frequencies (the first half of ``freq_vector``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    highpass = dct_highpass(image, cutoff=cutoff, backend=backend)
    coefficients = dct_highpass(image, cutoff=0, output="coefficients", backend=backend)
    mean_amplitude = freq_vector(image, backend=backend)[: BLOCK * BLOCK].reshape(BLOCK, BLOCK)
    limit = float(np.percentile(np.abs(highpass), 99)) or 1.0

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), constrained_layout=True)
    axes[0].imshow(image)
    axes[0].set_title(title or "input")
    shown = axes[1].imshow(highpass, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1].set_title(f"8×8 DCT high-pass (cutoff {cutoff})")
    fig.colorbar(shown, ax=axes[1], shrink=0.8)
    shown = axes[2].imshow(np.log1p(np.abs(coefficients)), cmap="magma")
    axes[2].set_title("log(1 + |DCT coefficient|) per block")
    fig.colorbar(shown, ax=axes[2], shrink=0.8)
    shown = axes[3].imshow(mean_amplitude, cmap="viridis")
    axes[3].set_title("mean log-amplitude per frequency (u, v)")
    axes[3].set_xlabel("v")
    axes[3].set_ylabel("u")
    fig.colorbar(shown, ax=axes[3], shrink=0.8)
    for ax in axes[:3]:
        ax.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
