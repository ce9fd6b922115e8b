"""Runtime choice of the kernels module by instruction-set (ISA) level.

The kernels are compiled once per level (setup.py) into pyact._kernels_<level>:
"baseline" (every CPU of the architecture), and on x86-64 "avx2" (x86-64-v3:
AVX2, FMA, BMI2) and "avx512" (x86-64-v4: AVX-512 F/BW/CD/DQ/VL).  At import the
best level that was built and that this CPU and OS can run (pyact._runtime,
baseline code, asks CPUID/XGETBV) is imported; a higher module is never imported
on a CPU that lacks its instructions.  PYACT_ISA=<level> forces a level.

`kernels` is the chosen module; it is also registered as ``pyact._kernels``.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from . import _runtime

__all__ = ["LEVELS", "ISA", "built_levels", "cpu_levels", "available_levels", "load",
           "kernels"]

LEVELS = ("baseline", "avx2", "avx512")
ENV = "PYACT_ISA"


def built_levels() -> tuple:
    """Levels whose kernels module was built, lowest first."""
    return tuple(level for level in LEVELS
                 if importlib.util.find_spec(f"pyact._kernels_{level}") is not None)


def cpu_levels() -> tuple:
    """Levels this CPU and OS can run (whether built or not), lowest first."""
    return tuple(_runtime.cpu_levels())


def available_levels() -> tuple:
    """Levels both built and runnable here, lowest first."""
    cpu = cpu_levels()
    return tuple(level for level in built_levels() if level in cpu)


def load(level: str):
    """The kernels module of `level`; RuntimeError when it cannot run here."""
    available = available_levels()
    if level not in available:
        if level not in LEVELS:
            why = "is not an ISA level"
        elif level not in built_levels():
            why = "was not built"
        else:
            why = "needs instructions this CPU (or OS) does not support"
        raise RuntimeError(f"pyact: ISA level {level!r} {why}; levels available here: "
                           f"{', '.join(available)} (known: {', '.join(LEVELS)})")
    return importlib.import_module(f"pyact._kernels_{level}")


def _choose() -> str:
    requested = os.environ.get(ENV, "").strip().lower()
    available = available_levels()
    if not available:
        raise ImportError("pyact: no kernels module is built; run "
                          "`python setup.py build_ext --inplace` or `pip install -e .`")
    if not requested:
        return available[-1]
    if requested not in available:
        try:
            load(requested)
        except RuntimeError as exc:
            raise ImportError(f"{ENV}={requested}: {exc}") from None
    return requested


ISA = _choose()
kernels = load(ISA)
# Older code (and tests) import pyact._kernels: that is the chosen module.
sys.modules["pyact._kernels"] = kernels
setattr(sys.modules[__package__], "_kernels", kernels)
