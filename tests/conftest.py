"""Session-wide test setup.

TorchInductor's on-disk cache is not keyed by ``ATEN_CPU_CAPABILITY``: a kernel compiled in a run at the
machine's native capability is reused by a run under ``ATEN_CPU_CAPABILITY=default``, whose precompiled
header lacks the vector types that kernel uses, and the C++ build fails. Unless the caller chose a cache
folder, each capability gets its own.
"""

from __future__ import annotations

import getpass
import os
import tempfile

if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    _capability = os.environ.get("ATEN_CPU_CAPABILITY", "native") or "native"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}_tests_{_capability}"
    )
