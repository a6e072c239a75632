"""Where deepfake-guard keeps what it derives on a machine (converted weights, ONNX graphs, Triton's backend
folder, server logs): one cache directory for every module."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$DFGUARD_CACHE``, else ``$XDG_CACHE_HOME/dfguard``, else ``~/.cache/dfguard``."""
    if os.environ.get("DFGUARD_CACHE"):
        return Path(os.environ["DFGUARD_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dfguard"
