"""Speed of pyact against the NumPy baseline (pyact._baselines), for
`python -m pyact bench`.  Medians of auto-scaled repeats, in nanoseconds per
element; both sides are measured in the same run, interleaved."""
from __future__ import annotations

import statistics
import timeit

import numpy as np

from . import _baselines
from ._api import PUBLIC
from ._registry import REGISTRY


def median_seconds(fn, repeat: int = 5, min_time: float = 0.02) -> float:
    """Median time of one call of fn over `repeat` auto-scaled runs."""
    timer = timeit.Timer(fn)
    number = 1
    while timer.timeit(number) < min_time:
        number *= 2
    return statistics.median(timer.repeat(repeat, number)) / number


def _inputs(act, dtype, size, rng):
    if act.kind == "axis":
        cols = min(size, 100)
        return rng.normal(0.0, 3.0, (size // cols, cols)).astype(dtype)
    return rng.normal(0.0, 3.0, size).astype(dtype)


def bench(names=None, dtypes=("float32", "float64"), sizes=(100_000,), repeat=5, seed=0):
    """Yield dicts (name, dtype, size, pyact_ns, numpy_ns, speedup) per case.

    pyact runs as NAME(x, out=buffer); the baseline is the NumPy expression
    of pyact._baselines with its default parameters.  numpy_ns is None when
    the baseline needs SciPy and SciPy is not installed.
    """
    rng = np.random.default_rng(seed)
    for name in names or list(REGISTRY):
        act = REGISTRY[name]
        params = act.example_params()
        baseline = getattr(_baselines, name)
        for dtype in dtypes:
            for size in sizes:
                x = _inputs(act, np.dtype(dtype), size, rng)
                buffer = np.empty_like(x)
                function = PUBLIC[name]
                with np.errstate(all="ignore"):
                    pyact_s = median_seconds(lambda: function(x, out=buffer, **params), repeat)
                    has_baseline = baseline(x, **params) is not None
                    numpy_s = (median_seconds(lambda: baseline(x, **params), repeat)
                               if has_baseline else None)
                yield {
                    "name": name, "dtype": str(dtype), "size": x.size,
                    "pyact_ns": pyact_s / x.size * 1e9,
                    "numpy_ns": numpy_s / x.size * 1e9 if numpy_s else None,
                    "speedup": numpy_s / pyact_s if numpy_s else None,
                }
