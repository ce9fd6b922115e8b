"""asv benchmarks: every registry activation, pyact beside its NumPy baseline.

Parameterised over activation × dtype × implementation, so the dashboard shows
pyact and the NumPy/SciPy expression of pyact._baselines side by side.  Sizes
are kept to one (1e5 elements) for now; derivative and backward benchmarks,
more sizes and PyTorch come with the benchmarks issue.
"""
import numpy as np

import pyact
from pyact import _baselines
from pyact._registry import AXIS, ELEMENTWISE, REGISTRY

SIZE = 100_000
DTYPES = ["float32", "float64"]
IMPLEMENTATIONS = ["pyact", "numpy"]


def _data(dtype, shape):
    return np.random.default_rng(0).normal(0.0, 3.0, shape).astype(dtype)


class Forward:
    """NAME(x, out=buf) against the baseline expression."""

    params = ([a.name for a in ELEMENTWISE + AXIS], DTYPES, IMPLEMENTATIONS)
    param_names = ["activation", "dtype", "implementation"]

    def setup(self, activation, dtype, implementation):
        act = REGISTRY[activation]
        shape = (SIZE // 100, 100) if act.kind == "axis" else (SIZE,)
        self.x = _data(dtype, shape)
        self.out = np.empty_like(self.x)
        self.kwargs = act.example_params()
        if implementation == "numpy" and _baselines_result(activation, self.x, self.kwargs) is None:
            raise NotImplementedError("baseline needs SciPy")

    def time_forward(self, activation, dtype, implementation):
        if implementation == "pyact":
            getattr(pyact, activation)(self.x, out=self.out, **self.kwargs)
        else:
            getattr(_baselines, activation)(self.x, **self.kwargs)


def _baselines_result(name, x, params):
    with np.errstate(all="ignore"):
        return getattr(_baselines, name)(x, **params)
