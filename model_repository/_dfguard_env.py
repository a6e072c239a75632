"""Put the launcher's site-packages first on sys.path for Triton's Python-backend stub.

The stub embeds the system Python in isolated mode, so PYTHONPATH is ignored; ``dfguard serve`` passes its
environment's site-packages in ``DFGUARD_SITE_PACKAGES``. Each model.py runs this file with ``runpy.run_path``
(an import would leave a ``__pycache__`` folder here, which Triton would take for a model).
"""

import os
import site
import sys

_before = list(sys.path)
for _directory in filter(None, os.environ.get("DFGUARD_SITE_PACKAGES", "").split(os.pathsep)):
    site.addsitedir(_directory)  # also runs the .pth files (an editable install's import hook)
sys.path[:] = [p for p in sys.path if p not in _before] + _before
