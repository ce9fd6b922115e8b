"""asv benchmarks: every registry activation, pyact beside its NumPy baseline.

Parameterised over activation × dtype × size × implementation, where
implementation is ``pyact``, ``numpy`` (the fastest of the NumPy/SciPy
expressions a user would write, pyact._baselines.candidates) and ``torch``
(PyTorch CPU, one thread; skipped when PyTorch is not installed).  The cases,
arrays and calls are the ones `python -m pyact bench` times (pyact._bench), so
the dashboard and the command line measure the same thing.

Sized for a 2-core machine: the forward form runs at 1e3, 1e5 and 1e7 elements;
out of place, derivative and backward at 1e5 (the softmax family over the
shapes (1000, 1000), (100000, 10) and (10, 100000)).  A full `asv run` of one
commit takes about 20-25 minutes there, `asv run --quick` about 3.
"""
import numpy as np

from pyact import _bench
from pyact._registry import REGISTRY

CASES = {case.label: case for case in _bench.cases()}
DTYPES = ["float32", "float64"]
IMPLEMENTATIONS = ["pyact", "numpy", "torch"]
AXIS_SHAPES = ["1000x1000", "100000x10", "10x100000"]

# Import-time guard: a registry entry without a benchmark fails the whole suite.
_missing = set(REGISTRY) - {case.act.name for case in CASES.values()}
if _missing:
    raise RuntimeError(f"activations without benchmarks: {sorted(_missing)}")


def _torch():
    try:
        import torch
    except ImportError:
        raise NotImplementedError("PyTorch is not installed") from None
    torch.set_num_threads(1)
    return torch


_PREPARED = {}


class _Form:
    """Times one form of one case with one implementation."""

    form = "forward"
    timeout = 120

    def setup(self, label, dtype, shape, implementation):
        # Prepared once per parameter set (asv calls setup before every sample);
        # in-place forms restore their input here, outside the timed call.
        key = (self.form, label, dtype, shape, implementation)
        if key not in _PREPARED:
            _PREPARED.clear()  # keep one case's arrays alive at a time
            _PREPARED[key] = self._prepare(label, dtype, shape, implementation)
        self.call, self.restore = _PREPARED[key]
        if self.restore is not None:
            self.restore()

    def _prepare(self, label, dtype, shape, implementation):
        case = CASES[label]
        if self.form not in case.forms:
            raise NotImplementedError(f"{label} has no {self.form} form")
        if case.act.kind == "axis" and len(shape) == 1:
            raise NotImplementedError("axis functions are timed over 2-D shapes")
        if case.act.kind != "axis" and len(shape) == 2:
            raise NotImplementedError("elementwise functions are timed over sizes")
        arrays = _bench._arrays(case, np.dtype(dtype), shape, np.random.default_rng(0))
        with np.errstate(all="ignore"):
            if implementation == "pyact":
                calls = [_bench._pyact_call(case, self.form, arrays)]
            elif implementation == "numpy":
                calls = _bench._numpy_calls(case, self.form, arrays)
            else:
                calls = _bench._torch_calls(_torch(), case, self.form, arrays)
        if not calls:
            raise NotImplementedError(f"no {implementation} implementation")
        if len(calls) > 1:  # keep the fastest NumPy spelling, as `pyact bench` does
            size = arrays["x"].size
            timings = [_bench.median_seconds(fn, 3, 0.005, restore) / size
                       for _, fn, restore in calls]
            calls = [calls[int(np.argmin(timings))]]
        _, call, restore = calls[0]
        return call, restore


def _sizes(*sizes):
    return [(s,) for s in sizes] + [tuple(int(v) for v in s.split("x")) for s in AXIS_SHAPES]


class Forward(_Form):
    """NAME(x, out=buf) at every size."""

    params = (list(CASES), DTYPES, _sizes(1000, 100_000, 10_000_000), IMPLEMENTATIONS)
    param_names = ["activation", "dtype", "shape", "implementation"]

    def time_forward(self, *args):
        self.call()


class InPlace(_Form):
    """NAME_(x); the input is restored before every timed call (number = 1)."""

    form = "inplace"
    number = 1
    repeat = (20, 50, 10.0)
    params = (list(CASES), DTYPES, _sizes(100_000), IMPLEMENTATIONS)
    param_names = Forward.param_names

    def time_inplace(self, *args):
        self.call()


class Derivative(_Form):
    form = "derivative"
    params = (list(CASES), DTYPES, _sizes(100_000), IMPLEMENTATIONS)
    param_names = Forward.param_names

    def time_derivative(self, *args):
        self.call()


class Backward(_Form):
    """NAME_backward(grad, x=x, out=buf) (axis functions: from y)."""

    form = "backward"
    params = (list(CASES), DTYPES, _sizes(100_000), IMPLEMENTATIONS)
    param_names = Forward.param_names

    def time_backward(self, *args):
        self.call()
