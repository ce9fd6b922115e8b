"""Speed of pyact against NumPy/SciPy (pyact._baselines) and, optionally,
PyTorch, for `python -m pyact bench`.

What is timed, per case (activation, dtype, size or shape, form):

* ``forward``: ``NAME(x, out=buf)`` (out of place, into a preallocated buffer);
* ``inplace``: ``NAME_(x)``.  Before every call x is restored from a saved copy
  *outside* the timed region (each call is timed on its own, and the
  clock's own overhead is subtracted), so repeated application never drifts
  the data into a trivial range (e.g. sigmoid of sigmoid of ... -> 0.73);
* ``derivative``: ``NAME_derivative(x, out=buf)``;
* ``backward``: ``NAME_backward(grad, x=x, out=buf)`` (axis functions:
  ``NAME_backward(grad, y=y, out=buf)``, their only backward);
* ``backward_y``: ``NAME_backward(grad, y=y, out=buf)`` (elementwise entries
  whose registry allows backward from y).

The NumPy side is every candidate of ``pyact._baselines.candidates`` (the
plain expressions a user would write, plus a few alternative spellings); the
fastest one is reported.  PyTorch (``--compare torch``) runs
``torch.nn.functional`` / ``torch.ops.aten`` on ``torch.from_numpy`` views of
the same arrays: the functional form out of place, the native in-place form
where torch has one (``torch.sigmoid_``, ``F.relu_``, ``F.silu(t, inplace=True)``,
...), and torch's autograd-free backward kernels (``aten.sigmoid_backward``,
``aten.gelu_backward``, ``aten.threshold_backward``, ...).  A form torch has
no kernel for is reported as n/a rather than emulated.

Timing: each implementation is calibrated (one call after a warm-up gives the
number of calls per batch that lasts about ``min_time`` seconds), then
``repeat`` rounds are timed, each round one batch of every implementation of
the case in turn (pyact, each NumPy candidate, torch), and the median per-call
time of each is reported, in nanoseconds per element.  Interleaving puts a
burst of load from elsewhere on a shared machine on both sides of a ratio
alike.  Inputs: x ~ Normal(0, 3), grad ~ Normal(0, 1),
y = NAME(x), all C-contiguous; axis functions work along the last axis.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import _baselines
from ._api import PUBLIC as _PUBLIC
from ._registry import REGISTRY, Activation

FORMS = ("forward", "inplace", "derivative", "backward", "backward_y")
DEFAULT_FORMS = ("forward", "backward")
DEFAULT_SIZES = (100_000,)
FULL_SIZES = (1_000, 100_000, 10_000_000)
# Shapes for the softmax family when no --sizes are given: square, many short
# rows (classification logits) and few long rows; always along the last axis.
DEFAULT_AXIS_SHAPES = ((1000, 1000), (100_000, 10), (10, 100_000))
DEFAULT_REPEAT = 5
DEFAULT_MIN_TIME = 0.01

TORCH_MISSING = ("PyTorch is not installed, so there is no PyTorch column "
                 "(pip install torch to compare; it is never a pyact dependency)")


# ---- timing --------------------------------------------------------------------------

def _clock_overhead() -> float:
    clock = time.perf_counter
    samples = []
    for _ in range(201):
        t0 = clock()
        t1 = clock()
        samples.append(t1 - t0)
    return statistics.median(samples)


_OVERHEAD: list = []


def clock_overhead() -> float:
    """Median cost of one perf_counter() pair, in seconds (measured once)."""
    if not _OVERHEAD:
        _OVERHEAD.append(_clock_overhead())
    return _OVERHEAD[0]


class _Batches:
    """Timed batches of calls of one implementation, calibrated on creation.

    With `restore`, restore() runs before every call outside the timed region:
    each call is then timed on its own and the clock overhead subtracted.
    """

    def __init__(self, fn: Callable[[], object], min_time: float,
                 restore: Optional[Callable[[], object]] = None):
        self.fn = fn
        self.restore = restore
        self.time(1)  # warm-up (first-touch page faults, lazy imports, caches)
        one = self.time(1)
        self.number = max(1, min(1_000_000, int(min_time / max(one, 1e-9))))

    def time(self, number: int) -> float:
        """Seconds per call over a batch of `number` calls."""
        clock = time.perf_counter
        fn = self.fn
        if self.restore is None:
            t0 = clock()
            for _ in range(number):
                fn()
            return (clock() - t0) / number
        total = 0.0
        for _ in range(number):
            self.restore()
            t0 = clock()
            fn()
            total += clock() - t0
        return max(total / number - clock_overhead(), 0.0)

    def batch(self) -> float:
        """Seconds per call over one batch of the calibrated size, after one
        untimed call: interleaved with other implementations, a batch would
        otherwise start with their data in the caches, a cost that weighs more
        on the faster side (a batch of a large array is a call or two)."""
        if self.restore is not None:
            self.restore()
        self.fn()
        return self.time(self.number)


def median_seconds(fn: Callable[[], object], repeat: int = DEFAULT_REPEAT,
                   min_time: float = DEFAULT_MIN_TIME,
                   restore: Optional[Callable[[], object]] = None) -> float:
    """Median time of one call of fn over `repeat` batches of auto-scaled size
    (restore: see _Batches)."""
    batches = _Batches(fn, min_time, restore)
    return statistics.median(batches.batch() for _ in range(max(1, repeat)))


def interleaved_medians(calls: dict, repeat: int = DEFAULT_REPEAT,
                        min_time: float = DEFAULT_MIN_TIME) -> dict:
    """{key: median seconds per call} for calls {key: (fn, restore or None)}.

    The batches are interleaved: each of `repeat` rounds times one batch of
    every call in turn, so that load from elsewhere on a shared machine, which
    comes in bursts, falls on both sides of a speed ratio alike instead of on
    whichever implementation happened to be running.
    """
    batches = {key: _Batches(fn, min_time, restore) for key, (fn, restore) in calls.items()}
    samples: dict = {key: [] for key in calls}
    for _ in range(max(1, repeat)):
        for key, timed in batches.items():
            samples[key].append(timed.batch())
    return {key: statistics.median(values) for key, values in samples.items()}


# ---- threads ---------------------------------------------------------------------------

def _pyact_thread_setter():
    """pyact.set_num_threads when it exists, else an internal hook, else None."""
    import pyact
    from . import _kernels
    for owner, attr in ((pyact, "set_num_threads"), (_kernels, "set_num_threads"),
                        (_kernels, "_set_num_threads")):
        setter = getattr(owner, attr, None)
        if callable(setter):
            return setter, f"{owner.__name__}.{attr}"
    return None, None


def _pyact_thread_getter():
    import pyact
    from . import _kernels
    for owner, attr in ((pyact, "get_num_threads"), (_kernels, "get_num_threads"),
                        (_kernels, "_get_num_threads")):
        getter = getattr(owner, attr, None)
        if callable(getter):
            return getter
    return None


def set_threads(n: Optional[int], torch=None) -> list:
    """Set pyact's (and torch's) thread count; return lines describing the result."""
    notes = []
    if n is not None:
        setter, where = _pyact_thread_setter()
        if setter is None:
            notes.append(f"pyact: --threads {n} not applied: this build has no thread control "
                         "(pyact.set_num_threads is not available yet); pyact runs "
                         "single-threaded")
        else:
            setter(n)
            notes.append(f"pyact: {n} thread(s) via {where}")
    getter = _pyact_thread_getter()
    if n is None and getter is not None:
        notes.append(f"pyact: {getter()} thread(s) (library default)")
    if torch is not None:
        if n is not None:
            torch.set_num_threads(n)
        notes.append(f"torch {torch.__version__}: {torch.get_num_threads()} thread(s)")
    return notes


# ---- cases -----------------------------------------------------------------------------

@dataclass
class Case:
    act: Activation
    label: str            # "gelu" or "gelu(approximate=tanh)"
    params: dict          # keyword parameters (axis functions: {"axis": -1})
    forms: tuple = field(default=())


def applicable_forms(act: Activation, params: dict) -> tuple:
    """The forms that exist for this activation with these parameters."""
    if act.kind == "axis":
        return ("forward", "inplace", "backward")
    forms = ["forward", "inplace", "derivative", "backward"]
    if act.backward_y and (act.y_rule is None or act.y_rule(params) is None):
        forms.append("backward_y")
    return tuple(forms)


def cases(names=None) -> list:
    """One case per activation, and per value of its choice parameter (gelu)."""
    out = []
    for name in names or list(REGISTRY):
        act = REGISTRY[name]
        if act.kind == "axis":
            out.append(Case(act, name, {"axis": -1}))
            continue
        cp = act.choice_param
        for choice in (cp.choices if cp is not None else (None,)):
            params = act.example_params()
            label = name
            if choice is not None and choice != cp.default:
                params[cp.name] = choice
                label = f"{name}({cp.name}={choice})"
            out.append(Case(act, label, params))
    for case in out:
        case.forms = applicable_forms(case.act, case.params)
    return out


def shapes_for(act: Activation, sizes) -> list:
    """Shapes to time: (size,) for elementwise entries; for the softmax family the
    DEFAULT_AXIS_SHAPES when sizes is None, else (size // cols, cols) with
    cols = min(size, 100)."""
    if sizes is None:
        return list(DEFAULT_AXIS_SHAPES) if act.kind == "axis" else [(s,) for s in DEFAULT_SIZES]
    if act.kind == "axis":
        return [(max(1, s // min(s, 100)), min(s, 100)) for s in sizes]
    return [(s,) for s in sizes]


# ---- implementations of one case ------------------------------------------------------

def _pyact_call(case: Case, form: str, arrays: dict, functions: Optional[dict] = None):
    """(description, fn, restore) timing pyact for one form; functions: the public
    functions to call (default pyact's own; tools/ab_kernels.py passes another
    build's)."""
    public = _PUBLIC if functions is None else functions
    name, p = case.act.name, case.params
    x, g, y, buf, saved = (arrays[k] for k in ("x", "grad", "y", "buf", "saved"))
    if form == "forward":
        f = public[name]
        return "NAME(x, out=buf)", lambda: f(x, out=buf, **p), None
    if form == "inplace":
        f = public[name + "_"]
        scratch = arrays["scratch"]
        return ("NAME_(x), x restored untimed", lambda: f(scratch, **p),
                lambda: np.copyto(scratch, saved))
    if form == "derivative":
        f = public[name + "_derivative"]
        return "NAME_derivative(x, out=buf)", lambda: f(x, out=buf, **p), None
    f = public[name + "_backward"]
    if form == "backward" and case.act.kind != "axis":
        return "NAME_backward(grad, x=x, out=buf)", lambda: f(g, x=x, out=buf, **p), None
    return "NAME_backward(grad, y=y, out=buf)", lambda: f(g, y=y, out=buf, **p), None


def _numpy_calls(case: Case, form: str, arrays: dict) -> list:
    """[(label, fn, restore)] for every available NumPy/SciPy candidate."""
    p = case.params
    x, g, y, buf, saved, scratch = (arrays[k] for k in
                                    ("x", "grad", "y", "buf", "saved", "scratch"))
    calls = []
    for label, impl in _baselines.candidates(case.act.name, form):
        if form == "inplace":
            fn = (lambda impl=impl: impl(scratch, **p))
            restore = (lambda: np.copyto(scratch, saved))
            restore()
            try:
                fn()
                ok = True
            finally:
                restore()
        else:
            if form in ("forward", "derivative"):
                fn = (lambda impl=impl: impl(x, buf, **p))
            elif form == "backward" and case.act.kind != "axis":
                fn = (lambda impl=impl: impl(g, x, buf, **p))
            else:
                fn = (lambda impl=impl: impl(g, y, buf, **p))
            restore = None
            probe = fn()
            ok = isinstance(probe, np.ndarray)  # None: needs SciPy
        if ok:
            calls.append((label, fn, restore))
    return calls


def _torch_calls(torch, case: Case, form: str, arrays: dict) -> list:
    """[(label, fn, restore)] for PyTorch, or [] where torch has no such kernel."""
    F = torch.nn.functional
    aten = torch.ops.aten
    name, tname = case.act.name, case.act.torch_name
    p = {k: v for k, v in case.params.items() if k != "axis"}
    t = {k: torch.from_numpy(arrays[k]) for k in ("x", "grad", "y", "scratch", "saved")}
    x, g, y, scratch = t["x"], t["grad"], t["y"], t["scratch"]
    dim = -1
    if not tname:
        return []
    if form == "forward":
        f = getattr(F, tname)
        if case.act.kind == "axis":
            return [(f"F.{tname}(t, dim=-1)", lambda: f(x, dim=dim), None)]
        return [(f"F.{tname}(t)", lambda: f(x, **p), None)]
    if form == "inplace":
        restore = (lambda: scratch.copy_(t["saved"]))
        native = {"sigmoid": "torch.sigmoid_", "tanh": "torch.tanh_"}
        if name in native:
            f = getattr(torch, name + "_")
            return [(f"{native[name]}(t)", lambda: f(scratch), restore)]
        if hasattr(F, tname + "_"):
            f = getattr(F, tname + "_")
            return [(f"F.{tname}_(t)", lambda: f(scratch, **p), restore)]
        f = getattr(F, tname)
        try:
            import inspect
            has_inplace = "inplace" in inspect.signature(f).parameters
        except (TypeError, ValueError):
            has_inplace = False
        if has_inplace:
            return [(f"F.{tname}(t, inplace=True)", lambda: f(scratch, inplace=True, **p),
                     restore)]
        return []
    if form == "derivative":
        return []  # torch has derivative kernels only as backward passes (see backward)
    if case.act.kind == "axis":
        if name == "softmax":
            return [("aten._softmax_backward_data(g, y)",
                     lambda: aten._softmax_backward_data(g, y, dim, y.dtype), None)]
        if name == "log_softmax":
            return [("aten._log_softmax_backward_data(g, y)",
                     lambda: aten._log_softmax_backward_data(g, y, dim, y.dtype), None)]
        if name == "softmin":
            return [("-aten._softmax_backward_data(g, y)",
                     lambda: torch.neg(aten._softmax_backward_data(g, y, dim, y.dtype)), None)]
        return []
    from ._registry import SELU_ALPHA, SELU_SCALE
    if form == "backward":  # from the saved input x
        table = {
            "relu": ("aten.threshold_backward(g, x, 0)", lambda: aten.threshold_backward(g, x, 0)),
            "relu6": ("aten.hardtanh_backward(g, x, 0, 6)",
                      lambda: aten.hardtanh_backward(g, x, 0.0, 6.0)),
            "leaky_relu": ("aten.leaky_relu_backward(g, x)",
                           lambda: aten.leaky_relu_backward(g, x, p.get("negative_slope"), False)),
            "elu": ("aten.elu_backward(g, x)",
                    lambda: aten.elu_backward(g, p.get("alpha"), 1, 1, False, x)),
            "selu": ("aten.elu_backward(g, x)",
                     lambda: aten.elu_backward(g, SELU_ALPHA, SELU_SCALE, 1, False, x)),
            "celu": ("aten.elu_backward(g, x)",
                     lambda: aten.elu_backward(g, p.get("alpha"), 1, 1 / p.get("alpha", 1), False, x)),
            "gelu": ("aten.gelu_backward(g, x)",
                     lambda: aten.gelu_backward(g, x, approximate=p.get("approximate", "none"))),
            "silu": ("aten.silu_backward(g, x)", lambda: aten.silu_backward(g, x)),
            "mish": ("aten.mish_backward(g, x)", lambda: aten.mish_backward(g, x)),
            "softplus": ("aten.softplus_backward(g, x)",
                         lambda: aten.softplus_backward(g, x, p.get("beta"), p.get("threshold"))),
            "hardsigmoid": ("aten.hardsigmoid_backward(g, x)",
                            lambda: aten.hardsigmoid_backward(g, x)),
            "hardswish": ("aten.hardswish_backward(g, x)", lambda: aten.hardswish_backward(g, x)),
            "hardtanh": ("aten.hardtanh_backward(g, x)",
                         lambda: aten.hardtanh_backward(g, x, p.get("min_val"), p.get("max_val"))),
            "hardshrink": ("aten.hardshrink_backward(g, x)",
                           lambda: aten.hardshrink_backward(g, x, p.get("lambd"))),
            "softshrink": ("aten.softshrink_backward(g, x)",
                           lambda: aten.softshrink_backward(g, x, p.get("lambd"))),
            "threshold": ("aten.threshold_backward(g, x)",
                          lambda: aten.threshold_backward(g, x, p.get("threshold"))),
        }
        if name == "log_sigmoid":
            # autograd saves the forward's buffer; it is computed here, untimed
            buffer = aten.log_sigmoid_forward(x)[1]
            table["log_sigmoid"] = ("aten.log_sigmoid_backward(g, x, buffer)",
                                    lambda: aten.log_sigmoid_backward(g, x, buffer))
        entry = table.get(name)
        return [(entry[0], entry[1], None)] if entry else []
    if form == "backward_y":  # from the saved output y
        table = {
            "sigmoid": ("aten.sigmoid_backward(g, y)", lambda: aten.sigmoid_backward(g, y)),
            "tanh": ("aten.tanh_backward(g, y)", lambda: aten.tanh_backward(g, y)),
            "relu": ("aten.threshold_backward(g, y, 0)", lambda: aten.threshold_backward(g, y, 0)),
            "leaky_relu": ("aten.leaky_relu_backward(g, y, is_result)",
                           lambda: aten.leaky_relu_backward(g, y, p.get("negative_slope"), True)),
            "elu": ("aten.elu_backward(g, y, is_result)",
                    lambda: aten.elu_backward(g, p.get("alpha"), 1, 1, True, y)),
            "selu": ("aten.elu_backward(g, y, is_result)",
                     lambda: aten.elu_backward(g, SELU_ALPHA, SELU_SCALE, 1, True, y)),
            "celu": ("aten.elu_backward(g, y, is_result)",
                     lambda: aten.elu_backward(g, p.get("alpha"), 1, 1 / p.get("alpha", 1), True, y)),
        }
        entry = table.get(name)
        return [(entry[0], entry[1], None)] if entry else []
    return []


def import_torch():
    """The torch module, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---- the benchmark ---------------------------------------------------------------------

def _arrays(case: Case, dtype, shape, rng) -> dict:
    x = rng.normal(0.0, 3.0, shape).astype(dtype)
    grad = rng.normal(0.0, 1.0, shape).astype(dtype)
    y = _PUBLIC[case.act.name](x, **case.params)
    return {"x": x, "grad": grad, "y": y, "buf": np.empty_like(x),
            "saved": x.copy(), "scratch": x.copy()}


def _fastest(timings: dict):
    """(label, ns per element) of the fastest of {label: ns}, or (None, None)."""
    if not timings:
        return None, None
    best = min(timings, key=timings.get)
    return best, timings[best]


def bench(names=None, dtypes=("float32", "float64"), sizes=None, repeat=DEFAULT_REPEAT,
          seed=0, forms=DEFAULT_FORMS, torch=None, min_time=DEFAULT_MIN_TIME):
    """Yield one dict per (case, dtype, shape, form).

    names: registry names (default all); sizes: element counts, or None for the
    defaults (1e5; the DEFAULT_AXIS_SHAPES for the softmax family); forms: a
    subset of FORMS (forms an activation does not have are skipped); torch:
    the torch module to compare with, or None.

    Row keys: op, name, params, dtype, shape, size, form, pyact_call, pyact_ns,
    numpy_impl, numpy_ns, numpy_candidates, speedup_numpy (numpy_ns / pyact_ns,
    > 1 means pyact is faster), torch_impl, torch_ns, speedup_torch.  The numpy_*
    and torch_* values are None where there is no implementation.
    """
    rng = np.random.default_rng(seed)
    for case in cases(names):
        for dtype in dtypes:
            for shape in shapes_for(case.act, sizes):
                arrays = _arrays(case, np.dtype(dtype), shape, rng)
                size = arrays["x"].size
                for form in forms:
                    if form not in case.forms:
                        continue
                    with np.errstate(all="ignore"):
                        description, fn, restore = _pyact_call(case, form, arrays)
                        calls = {("pyact", description): (fn, restore)}
                        for label, fn, restore in _numpy_calls(case, form, arrays):
                            calls["numpy", label] = (fn, restore)
                        if torch is not None:
                            for label, fn, restore in _torch_calls(torch, case, form, arrays):
                                calls["torch", label] = (fn, restore)
                        seconds = interleaved_medians(calls, repeat, min_time)
                    ns = {side: {label: t / size * 1e9 for (s, label), t in seconds.items()
                                 if s == side} for side in ("pyact", "numpy", "torch")}
                    pyact_ns = ns["pyact"][description]
                    np_label, numpy_ns = _fastest(ns["numpy"])
                    t_label, torch_ns = _fastest(ns["torch"])
                    np_all = ns["numpy"]
                    yield {
                        "op": case.label, "name": case.act.name,
                        "params": dict(case.params), "dtype": str(np.dtype(dtype)),
                        "shape": list(shape), "size": size, "form": form,
                        "pyact_call": description, "pyact_ns": pyact_ns,
                        "numpy_impl": np_label, "numpy_ns": numpy_ns,
                        "numpy_candidates": np_all,
                        "speedup_numpy": numpy_ns / pyact_ns if numpy_ns and pyact_ns else None,
                        "torch_impl": t_label, "torch_ns": torch_ns,
                        "speedup_torch": torch_ns / pyact_ns if torch_ns and pyact_ns else None,
                    }


# ---- reporting -------------------------------------------------------------------------

def geomean(values) -> Optional[float]:
    values = [v for v in values if v]
    if not values:
        return None
    return math.exp(sum(map(math.log, values)) / len(values))


def _shape_text(row) -> str:
    shape = row["shape"]
    return str(shape[0]) if len(shape) == 1 else "x".join(map(str, shape))


def format_header(with_torch: bool) -> str:
    head = (f"{'activation':<24} {'dtype':<7} {'size/shape':>12} {'form':<10} "
            f"{'pyact':>8} {'numpy':>8} {'speed-up':>8}")
    if with_torch:
        head += f" {'torch':>8} {'vs torch':>8}"
    return head


def format_row(row, with_torch: bool) -> str:
    def num(v):
        return f"{v:>8.3f}" if v is not None else f"{'n/a':>8}"

    def ratio(v):
        return f"{_ratio_text(v):>7}x" if v is not None else f"{'n/a':>8}"

    line = (f"{row['op']:<24} {row['dtype']:<7} {_shape_text(row):>12} {row['form']:<10} "
            f"{num(row['pyact_ns'])} {num(row['numpy_ns'])} {ratio(row['speedup_numpy'])}")
    if with_torch:
        line += f" {num(row['torch_ns'])} {ratio(row['speedup_torch'])}"
    return line


def _ratio_text(v: float) -> str:
    return f"{v:.2f}" if v >= 0.1 else f"{v:.3f}"


def _case_text(row) -> str:
    return f"{row['op']} {row['dtype']} {_shape_text(row)} {row['form']}"


def summary_lines(rows, with_torch: bool) -> list:
    lines = []
    columns = [("NumPy/SciPy", "speedup_numpy")]
    if with_torch:
        columns.append(("PyTorch", "speedup_torch"))
    for who, key in columns:
        have = [r for r in rows if r[key]]
        if not have:
            lines.append(f"vs {who}: no comparable cases")
            continue
        g = geomean(r[key] for r in have)
        worst = min(have, key=lambda r: r[key])
        best = max(have, key=lambda r: r[key])
        lines.append(f"vs {who}: geometric mean speed-up {_ratio_text(g)}x over {len(have)} "
                     f"cases; minimum {_ratio_text(worst[key])}x ({_case_text(worst)}); "
                     f"maximum {_ratio_text(best[key])}x ({_case_text(best)})")
    return lines


def cpu_model() -> str:
    """The CPU's marketing name ("model name" in /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "uarch") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict:
    """What a timing table needs to say about where it was measured."""
    system = f"{platform.system()} {platform.release()}"
    try:  # the distribution, where there is one (Python >= 3.10, Linux)
        system = f"{platform.freedesktop_os_release()['PRETTY_NAME']}, {system}"
    except (AttributeError, OSError, KeyError):
        pass
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "os": system,
            "python": platform.python_version()}


def write_json(path, rows, meta) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)
        fh.write("\n")
