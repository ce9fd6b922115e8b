"""Version, build and runtime configuration, for bug reports and `python -m pyact`."""
import platform
import sys

import numpy as np

from . import _dispatch, _runtime, _threads
from ._version import __version__

# The _OPENMP macro is the date of the specification the compiler implements.
_OPENMP_RELEASES = {200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0",
                    201511: "4.5", 201811: "5.0", 202011: "5.1", 202111: "5.2",
                    202411: "6.0"}


def _openmp_version() -> str:
    date = _runtime.openmp_version()
    if not date:
        return "none (serial kernels)"
    return f"{_OPENMP_RELEASES.get(date, 'unknown')} ({date})"


def config() -> dict:
    """Version, build and runtime configuration of pyact as a dict.

    Build: "compiler" (its --version line), "cflags" (the flags the build took
    from Python and $CFLAGS), "compile_args" (pyact's own) and "isa_flags" (those
    of the ISA level in use); "cython" and "numpy_build" are the versions the
    extension was built with, "numpy" the one imported now.  Runtime: "isa" is the
    instruction-set level of the kernels in use (PYACT_ISA forces one),
    "isa_available" the levels built that this CPU can run, "openmp" whether the
    kernels are threaded and "num_threads" the most threads a kernel call uses
    (pyact.set_num_threads); "stream_min_bytes" is the output size from which the
    piecewise-linear kernels (and softsign, hardswish) write out-of-place results
    with streaming stores, which bypass the caches (None: the level has none).
    """
    build = _dispatch.kernels.BUILD_INFO
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "numpy": np.__version__,
        "numpy_build": build["numpy_build"],
        "cython": build["cython"],
        "compiler": build["compiler"],
        "cflags": build["cflags"],
        "compile_args": build["compile_args"],
        "isa": _dispatch.ISA,
        "isa_flags": build.get("isa_flags", ""),
        "isa_available": list(_dispatch.available_levels()),
        "openmp": _threads.openmp(),
        "openmp_version": _openmp_version(),
        "num_threads": _threads.get_num_threads(),
        "stream_min_bytes": (_dispatch.kernels._stream_tuning()
                             if _dispatch.kernels.STREAM_STORES else None),
    }


def show_config() -> None:
    """Print :func:`config` one item a line."""
    items = config()
    width = max(map(len, items))
    for key, value in items.items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:<{width}} : {value}")
