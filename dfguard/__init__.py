"""deepfake-guard: deepfake video detection (dual-stream RGB + DCT frequency network, CDNet cluster decision)
served as an NVIDIA Triton ensemble.

Sub-packages: ``dfguard.kernels`` (blockwise 8×8 DCT), ``dfguard.faces`` (detection, tiles, tracks, crops),
``dfguard.inference`` (what a trained model is: config, network, checkpoint, serving spec), ``dfguard.serving``
(the Triton steps, starting tritonserver), ``dfguard.client`` (gRPC client, batch scoring), ``dfguard.train``
(data, training, evaluation, export). docs/architecture.md has the layers.
"""

import importlib.abc
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

# setup.py maps the checkout's kernels/, train/ and client/ folders to dfguard.kernels, .train and .client. Run
# from a checkout without an install (``PYTHONPATH=.``, as on a bare GPU machine), this finder maps those three
# and nothing else (``dfguard.setup`` or ``dfguard.benchmarks`` do not exist); installed, or installed editable
# (whose own finder comes first), it never answers.
CHECKOUT_FOLDERS = ("kernels", "train", "client")
_CHECKOUT = Path(__file__).resolve().parent.parent


class _CheckoutFolders(importlib.abc.MetaPathFinder):
    """Finds ``dfguard.<folder>`` for the ``CHECKOUT_FOLDERS`` of the checkout this package lies in."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        package, _, folder = fullname.partition(".")
        init = _CHECKOUT / folder / "__init__.py"
        if package != __name__ or folder not in CHECKOUT_FOLDERS or not init.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[str(init.parent)])


if (_CHECKOUT / "setup.py").is_file() and not any(isinstance(f, _CheckoutFolders) for f in sys.meta_path):
    sys.meta_path.append(_CheckoutFolders())
