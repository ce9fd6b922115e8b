"""asv benchmarks: every registry activation, pyact beside its NumPy baseline.

Parameterised over activation × dtype × size (or shape) × implementation:

* ``pyact``;
* ``numpy``: the fastest of the NumPy/SciPy expressions a user would write
  (``pyact._baselines.candidates``: ``expit(x)`` beside ``1/(1+np.exp(-x))``,
  ufuncs with ``out=``, the max/exp/sum softmax recipe, ...), picked in setup
  by timing each candidate on the case's arrays (on a 1e6-element prefix for
  larger cases);
* ``torch``: ``torch.nn.functional`` / ``torch.ops.aten`` on ``torch.from_numpy``
  views of the same arrays; skipped (``NotImplementedError`` in setup) when
  PyTorch is not installed or has no kernel for the form.  PyTorch has no
  derivative kernels (only backward passes) and no in-place softmax, so
  ``Derivative`` and ``AxisInPlace`` have no torch column.

The cases, arrays and calls are the ones `python -m pyact bench` times
(``pyact._bench``), so the dashboard and the command line measure the same
thing.  Forms: ``OutOfPlace`` is ``NAME(x, out=buf)``, ``InPlace``
``NAME_(x)`` (input restored before every call, untimed), ``Derivative``
``NAME_derivative(x, out=buf)``, ``Backward`` the fused
``NAME_backward(grad, x=x, out=buf)``; the ``Axis*`` classes time the same
forms of the softmax family (backward from y), along the last axis.

Threads: pyact and PyTorch run single-threaded here, like NumPy, so that the
columns compare like with like and a busy machine cannot stall an OpenMP
barrier (which swings multi-threaded timings of 1e5-element calls by 10x on
a shared 2-core machine); ``Threads`` times pyact's threaded path separately.

Sizing, for a full run of one commit in under 30 minutes and ``--quick`` in
under 5 on a 2-core machine: every form runs at 1e5 elements; only the
out-of-place forward also runs at 1e3 (call overhead) and 1e7 (memory
bandwidth), and the softmax family runs over the shapes (1000, 1000),
(100000, 10) and (10, 100000) (about 900 parameter sets in all).  Each
parameter set takes asv's default two rounds (two processes) of 5 to 100
samples, at most about a second each (``repeat``); with asv_runner >= 0.3 a
sample is one call, as setup re-runs before each (cheaply: the arrays are
made once per process).  ``launch_method: forkserver`` (asv.conf.json)
imports NumPy, SciPy, pyact and PyTorch once, not once per parameter set.
Measured on the 2-vCPU development machine while shared with other jobs
(load 5-8): ``asv run --python=same --quick`` 3-4 minutes; ``asv run HEAD^!``
25-31 minutes, of which 14 benchmarks and the rest building the wheel.
"""
import numpy as np

import pyact
from pyact import _bench
from pyact._registry import REGISTRY

# pyact's default: all cores, unless PYACT_NUM_THREADS says otherwise (read before
# torch.set_num_threads, which sets OpenMP's default for the process)
DEFAULT_THREADS = pyact.get_num_threads()

try:  # imported here, once in asv's forkserver, rather than in every setup
    import torch
except ImportError:
    torch = None
else:
    torch.set_num_threads(1)

pyact.set_num_threads(1)
# The NumPy baselines overflow in exp() for large |x|, as user code would;
# pyact itself never warns.
np.seterr(all="ignore")

CASES = {case.label: case for case in _bench.cases()}
ELEMENTWISE = [label for label, case in CASES.items() if case.act.kind != "axis"]
AXIS = [label for label, case in CASES.items() if case.act.kind == "axis"]
DTYPES = ["float32", "float64"]
IMPLEMENTATIONS = ["pyact", "numpy", "torch"]
AXIS_SHAPES = [(1000, 1000), (100_000, 10), (10, 100_000)]
ELEMENTWISE_NAMES = ["activation", "dtype", "size", "implementation"]
AXIS_NAMES = ["activation", "dtype", "shape", "implementation"]
# Cases above this many elements pick their NumPy spelling on a prefix this long.
PICK_ELEMENTS = 1_000_000

# Import-time guard: a registry entry without a benchmark fails the whole suite.
_missing = set(REGISTRY) - {CASES[label].act.name for label in ELEMENTWISE + AXIS}
if _missing:
    raise RuntimeError(f"activations without benchmarks: {sorted(_missing)}")


def _fastest_numpy(case, form, arrays):
    """(fn, restore) of the fastest NumPy/SciPy candidate for this case."""
    calls = _bench._numpy_calls(case, form, arrays)
    if len(calls) > 1:
        sample = arrays
        if arrays["x"].size > PICK_ELEMENTS:
            sample = {key: a.reshape(-1)[:PICK_ELEMENTS] for key, a in arrays.items()}
        timings = {label: _bench.median_seconds(fn, 3, 0.005, restore)
                   for label, fn, restore in _bench._numpy_calls(case, form, sample)}
        best = min(timings, key=timings.get)
        calls = [call for call in calls if call[0] == best]
    if not calls:
        raise NotImplementedError("no NumPy/SciPy implementation (SciPy missing?)")
    _, fn, restore = calls[0]
    return fn, restore


def _torch_call(case, form, arrays):
    if torch is None:
        raise NotImplementedError("PyTorch is not installed")
    calls = _bench._torch_calls(torch, case, form, arrays)
    if not calls:
        raise NotImplementedError(f"PyTorch has no {form} kernel for {case.label}")
    _, fn, restore = calls[0]
    return fn, restore


_PREPARED = {}


def _prepare(form, label, dtype, shape, implementation):
    """(call, restore) timing one form of one case with one implementation; made
    once per process and reused by asv's repeated setup calls."""
    key = (form, label, dtype, shape, implementation)
    if key not in _PREPARED:
        _PREPARED.clear()  # one case's arrays alive at a time
        case = CASES[label]
        arrays = _bench._arrays(case, np.dtype(dtype), shape, np.random.default_rng(0))
        if implementation == "pyact":
            _, fn, restore = _bench._pyact_call(case, form, arrays)
        elif implementation == "numpy":
            fn, restore = _fastest_numpy(case, form, arrays)
        else:
            fn, restore = _torch_call(case, form, arrays)
        _PREPARED[key] = (fn, restore, arrays)
    return _PREPARED[key][:2]


class _Timed:
    form = "forward"
    timeout = 180
    warmup_time = 0.05
    # Samples per round (min, max, seconds): up to 100 while under 1 s, at least
    # 5 (the 1e7-element cases, whose calls take 5-500 ms, stop there).
    repeat = (5, 100, 1.0)

    def setup(self, label, dtype, shape, implementation):
        if isinstance(shape, int):
            shape = (shape,)
        self.call, restore = _prepare(self.form, label, dtype, shape, implementation)
        if restore is not None:  # in-place forms: fresh input, outside the timed call
            restore()


class OutOfPlace(_Timed):
    """Forward pass out of place, NAME(x, out=buf), at 1e3, 1e5 and 1e7 elements."""

    params = (ELEMENTWISE, DTYPES, [1_000, 100_000, 10_000_000], IMPLEMENTATIONS)
    param_names = ELEMENTWISE_NAMES

    def time_forward(self, *params):
        self.call()


class InPlace(_Timed):
    """Forward pass in place, NAME_(x); x is restored before every call, untimed."""

    form = "inplace"
    number = 1
    params = (ELEMENTWISE, DTYPES, [100_000], IMPLEMENTATIONS)
    param_names = ELEMENTWISE_NAMES

    def time_inplace(self, *params):
        self.call()


class Derivative(_Timed):
    """f'(x), NAME_derivative(x, out=buf) (PyTorch has no such kernel)."""

    form = "derivative"
    params = (ELEMENTWISE, DTYPES, [100_000], ["pyact", "numpy"])
    param_names = ELEMENTWISE_NAMES

    def time_derivative(self, *params):
        self.call()


class Backward(_Timed):
    """Fused backward pass, NAME_backward(grad, x=x, out=buf) = grad * f'(x)."""

    form = "backward"
    params = (ELEMENTWISE, DTYPES, [100_000], IMPLEMENTATIONS)
    param_names = ELEMENTWISE_NAMES

    def time_backward(self, *params):
        self.call()


class AxisOutOfPlace(_Timed):
    """softmax / log_softmax / softmin(x, axis=-1, out=buf)."""

    params = (AXIS, DTYPES, AXIS_SHAPES, IMPLEMENTATIONS)
    param_names = AXIS_NAMES

    def time_forward(self, *params):
        self.call()


class AxisInPlace(_Timed):
    """softmax_ / log_softmax_ / softmin_(x, axis=-1); x restored before every call
    (PyTorch has no in-place softmax)."""

    form = "inplace"
    number = 1
    params = (AXIS, DTYPES, AXIS_SHAPES, ["pyact", "numpy"])
    param_names = AXIS_NAMES

    def time_inplace(self, *params):
        self.call()


class AxisBackward(_Timed):
    """Vector-Jacobian product from the saved output, NAME_backward(grad, y=y, axis=-1)."""

    form = "backward"
    params = (AXIS, DTYPES, AXIS_SHAPES, IMPLEMENTATIONS)
    param_names = AXIS_NAMES

    def time_backward(self, *params):
        self.call()


class Threads(_Timed):
    """pyact's OpenMP path: NAME(x, out=buf) at 1e7 elements on one thread and on
    pyact's default (all cores), for a cheap, a transcendental and a costly kernel."""

    params = (["relu", "sigmoid", "gelu"], DTYPES, ["1", "default"])
    param_names = ["activation", "dtype", "threads"]

    def setup(self, label, dtype, threads):
        super().setup(label, dtype, 10_000_000, "pyact")
        pyact.set_num_threads(1 if threads == "1" else DEFAULT_THREADS)

    def teardown(self, *params):
        pyact.set_num_threads(1)

    def time_forward(self, *params):
        self.call()
