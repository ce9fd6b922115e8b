"""Version and build configuration, for bug reports and `python -m pyact`."""
import platform
import sys

import numpy as np

from . import _dispatch, _threads
from ._version import __version__


def config() -> dict:
    """Version, build and runtime configuration of pyact as a dict.

    "isa" is the instruction-set level of the kernels in use (PYACT_ISA forces
    one), "isa_available" the levels built that this CPU can run, and
    "num_threads" the most threads a kernel call uses (pyact.set_num_threads).
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
        "compile_args": build["compile_args"],
        "isa": _dispatch.ISA,
        "isa_flags": build.get("isa_flags", ""),
        "isa_available": list(_dispatch.available_levels()),
        "openmp": _threads.openmp(),
        "num_threads": _threads.get_num_threads(),
    }


def show_config() -> None:
    """Print :func:`config` one item a line."""
    items = config()
    width = max(map(len, items))
    for key, value in items.items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:<{width}} : {value}")
