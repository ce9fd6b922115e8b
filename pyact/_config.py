"""Version and build configuration, for bug reports and `python -m pyact`."""
import platform
import sys

import numpy as np

from . import _kernels
from ._version import __version__


def config() -> dict:
    """Version, build and runtime configuration of pyact as a dict."""
    build = _kernels.BUILD_INFO
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "numpy": np.__version__,
        "numpy_build": build["numpy_build"],
        "cython": build["cython"],
        "compiler": build["compiler"],
        "compile_args": build["compile_args"],
    }


def show_config() -> None:
    """Print :func:`config` one item a line."""
    items = config()
    width = max(map(len, items))
    for key, value in items.items():
        print(f"{key:<{width}} : {value}")
