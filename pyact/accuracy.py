"""`python -m pyact.accuracy`: the measured accuracy of every kernel.

For every function of the registry, dtype and form (forward, derivative,
backward from x, backward from y) this measures the largest error in ULPs of
pyact's result against :mod:`pyact.reference` evaluated one step wider
(float64 for float32 results, long double for float64 results; see
pyact/_check.py, which it shares with `python -m pyact check`), the argument
where it occurs and the number of points tested, and compares it with the
stated bound of the registry (``Activation.ulp_bound``).

Where the points come from (magnitudes |x|, both signs; p = bits of the
significand: 24 for float32, 53 for float64):

* every |x| below 2**(emin + 10), i.e. the subnormals and the lowest normal
  binades, where results may be subnormal and rounding is different;
* every |x| in [2**lo, 2**hi), the *core*: lo = -(p + 8), below which every
  function here is its value at 0 plus its first-order term to within
  2**-(p+8) (tanhshrink, whose lowest term is x**3/3, and its derivative x**2,
  go down to where those underflow); hi = 8 (float32) or 11 (float64), beyond
  the point where every exponential tail has underflowed or saturated (|x| of
  about 104 in float32, 745 in float64), so that above it each function is a
  constant, x itself or a fixed multiple of x rounded (softsign, whose tails
  are algebraic, goes up to where 1/|x| and 1/x**2 stop mattering);
* in the *tail* binades between and above, `--tail N` random points per
  binade and sign plus the binade's ends;
* zeros, infinities, NaN, subnormals, the float range's edges and a few ULPs
  around every kink of the registry.

With --exhaustive the core and the low region are enumerated, every float32
in them (float64 cannot be enumerated and is sampled regardless); otherwise
`--sample N` points are drawn: half uniformly among the core floats
(log-uniform in magnitude), a quarter in the tails, a quarter from the
sample of `python -m pyact check`.  Backward forms use random grads of
magnitude 1/2 to 2.  The axis functions (softmax, ...) are measured on
`--sample N` elements in random rows (lengths 1 to 4096, logits of scales
1e-3 to 1e3, shifted by up to 1e4, some masked with -inf, some +inf/NaN, some
of equal logits with equal grads); their backward error is in ULPs of the
largest |exact| value in the row, because g - sum(g y) can cancel to far below
its terms.

The exit status is 1 when any measured error exceeds its bound.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import _check
from ._registry import AXIS, ELEMENTWISE, REGISTRY, Activation

__all__ = ["Case", "Domain", "Result", "cases", "domain", "measure", "markdown", "main"]

CHUNK = 2**22          # points per task: bounds memory (~0.5 GB per worker for gelu)
# The reference is dozens of NumPy passes: blocks that stay in the cache are 3-6
# times faster than whole tasks.
EVAL_BLOCK = 2**16
DEFAULT_SAMPLE = 2**21
DEFAULT_TAIL = 2**12   # random points per tail binade and sign
DTYPES: Dict[str, type] = {"float32": np.float32, "float64": np.float64}
FORMS = _check.ELEMENTWISE_FORMS
FORM_LABELS = {"forward": "f", "derivative": "f′", "backward": "backward from x",
               "backward_y": "backward from y"}
_UINT = {4: np.uint32, 8: np.uint64}


# ---- what is measured ----------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One kernel: a registry function (with one value of its choice
    parameter, e.g. gelu's approximate), a dtype and a form."""

    name: str
    choice: Optional[str]
    dtype: str
    form: str

    @property
    def act(self) -> Activation:
        return REGISTRY[self.name]

    @property
    def params(self) -> dict:
        params = self.act.example_params()
        choice_param = self.act.choice_param
        if self.choice is not None and choice_param is not None:
            params[choice_param.name] = self.choice
        return params

    @property
    def label(self) -> str:
        choice_param = self.act.choice_param
        if self.choice is None or choice_param is None:
            return self.name
        return f"{self.name}({choice_param.name}={self.choice!r})"

    @property
    def bound(self) -> float:
        return float(self.act.ulp_bound(self.form))


def cases(functions: Optional[Sequence[str]] = None, dtypes: Sequence[str] = tuple(DTYPES),
          forms: Sequence[str] = FORMS) -> List[Case]:
    """Every (function, choice, dtype, form) there is a kernel for, in registry
    order; functions default to the whole registry, at their default (or, for
    required ones, example) parameters."""
    unknown = set(functions or ()) - set(REGISTRY)
    if unknown:
        raise ValueError(f"unknown function(s): {', '.join(sorted(unknown))}")
    found = []
    for act in ELEMENTWISE + AXIS:
        if functions and act.name not in functions:
            continue
        cp = act.choice_param
        for choice in (cp.choices if cp is not None else (None,)):
            for dtype in dtypes:
                case_forms = _check.forms(act, Case(act.name, choice, dtype, "").params,
                                          DTYPES[dtype])
                for form in case_forms:
                    if form in forms:
                        found.append(Case(act.name, choice, dtype, form))
    return found


# ---- where: magnitude binades ----------------------------------------------------------

@dataclass(frozen=True)
class Domain:
    """The inputs of one case as binades of |x| (both signs): all of
    [0, 2**low_top) and [2**lo, 2**hi) are enumerable (the core), the binades
    in between and above are the tails."""

    dtype: str
    low_top: int
    lo: int
    hi: int

    @property
    def info(self):
        return np.finfo(DTYPES[self.dtype])

    def bits(self, e: int) -> int:
        """Bit pattern of 2**e (e >= emin)."""
        fi = self.info
        return (e - fi.minexp + 1) << fi.nmant

    def core_bit_ranges(self) -> List[Tuple[int, int]]:
        """[start, stop) ranges of the magnitude bit patterns of the core."""
        if self.lo <= self.low_top:
            return [(0, self.bits(self.hi))]
        return [(0, self.bits(self.low_top)), (self.bits(self.lo), self.bits(self.hi))]

    def core_size(self) -> int:
        """Number of floats in the core, both signs."""
        return 2 * sum(stop - start for start, stop in self.core_bit_ranges())

    def tail_binades(self) -> List[int]:
        return (list(range(self.low_top, self.lo)) +
                list(range(self.hi, self.info.maxexp)))

    def describe(self) -> str:
        parts = [f"|x| < 2^{self.low_top}"] if self.lo > self.low_top else []
        parts.append(f"2^{self.lo} <= |x| < 2^{self.hi}" if self.lo > self.low_top
                     else f"|x| < 2^{self.hi}")
        return ", ".join(parts)


def domain(act: Activation, form: str, dtype: str) -> Domain:
    """The core and tails of one case (see the module docstring for why)."""
    fi = np.finfo(np.dtype(DTYPES[dtype]))
    p = fi.nmant + 1
    min_sub = fi.minexp - fi.nmant             # 2**min_sub: smallest subnormal
    # exp-based tails are gone beyond |x| = ln(2) * -min_sub (103.3, 744.4);
    # x exp(x) (silu, mish) a little further: 10% margin, one binade more.
    hi = math.ceil(math.log2(1.1 * math.log(2) * -min_sub)) + 1
    lo = -(p + 8)
    if act.name == "softsign":
        # 1 - 1/(1+|x|) differs from 1 up to |x| = 2**p; 1/(1+|x|)**2 is
        # nonzero up to |x| = 2**(-min_sub/2)
        hi = p + 2 if form == "forward" else math.ceil(-min_sub / 2) + 2
    if act.name == "tanhshrink":
        # x**3/3 (f) and x**2 (f') are nonzero down to |x| = 2**(min_sub/3), 2**(min_sub/2)
        lo = math.floor(min_sub / (3 if form == "forward" else 2)) - 2
    return Domain(dtype, fi.minexp + 10, lo, hi)


# ---- the inputs: tasks of at most CHUNK points -------------------------------------------

def _from_bits(bits: np.ndarray, dtype) -> np.ndarray:
    return bits.astype(_UINT[np.dtype(dtype).itemsize]).view(dtype)


def _sign_bit(dtype) -> int:
    return 1 << (8 * np.dtype(dtype).itemsize - 1)


def _kink_neighbourhoods(act: Activation, dtype, ulps: int = 32) -> np.ndarray:
    values: List[Any] = []
    for k in act.kinks + (0.0,):
        v = np.array([k, k], dtype=dtype)
        for _ in range(ulps):
            values.extend(v)
            v = np.nextafter(v, np.array([-np.inf, np.inf], dtype=dtype))
    return np.array(values, dtype=dtype)


def _grad(rng, n: int, dtype) -> np.ndarray:
    return (rng.choice([-1.0, 1.0], n) * np.exp2(rng.uniform(-1.0, 1.0, n))).astype(dtype)


def _random_core(rng, dom: Domain, n: int) -> np.ndarray:
    ranges = dom.core_bit_ranges()
    sizes = np.array([stop - start for start, stop in ranges], dtype=np.uint64)
    ends = np.cumsum(sizes)
    r = rng.integers(0, int(ends[-1]), n, dtype=np.uint64)
    which = np.searchsorted(ends, r, side="right")
    starts = np.array([start for start, _ in ranges], dtype=np.uint64)
    offset = r - np.concatenate([[0], ends[:-1]]).astype(np.uint64)[which]
    bits = starts[which] + offset
    bits |= rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(8 * np.dtype(dom.dtype).itemsize - 1)
    return _from_bits(bits, DTYPES[dom.dtype])


def _tail_binades(rng, dom: Domain, binades: Sequence[int], per_binade: int) -> np.ndarray:
    """per_binade random points in each binade, both signs, and its ends."""
    dtype = DTYPES[dom.dtype]
    parts = []
    for e in binades:
        start, stop = dom.bits(e), dom.bits(e + 1)
        bits = np.concatenate([np.array([start, stop - 1], dtype=np.uint64),
                               rng.integers(start, stop, per_binade, dtype=np.uint64)])
        parts += [bits, bits | np.uint64(_sign_bit(dtype))]
    return _from_bits(np.concatenate(parts), dtype) if parts else np.empty(0, dtype)


def _random_tails(rng, dom: Domain, n: int) -> np.ndarray:
    """n random points in the tails: a random binade each, random sign and significand."""
    dtype = DTYPES[dom.dtype]
    binades = np.array(dom.tail_binades())
    if binades.size == 0:
        return np.empty(0, dtype)
    fi = dom.info
    e = rng.choice(binades, n)
    bits = ((e - fi.minexp + 1).astype(np.uint64) << np.uint64(fi.nmant))
    bits += rng.integers(0, 1 << fi.nmant, n, dtype=np.uint64)
    bits |= rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(8 * fi.dtype.itemsize - 1)
    return _from_bits(bits, dtype)


def tasks(case: Case, exhaustive: bool, sample: int, tail: int, seed: int = 0,
          chunk: int = CHUNK) -> List[tuple]:
    """The work of one case as independent tasks (kind, *payload), each at most
    `chunk` points (plus a few edges)."""
    dtype = case.dtype
    if case.act.kind == "axis":
        return [("rows", seed * 7919 + i, min(chunk, sample - i * chunk))
                for i in range(math.ceil(sample / chunk))]
    dom = domain(case.act, case.form, dtype)
    out: List[tuple] = [("values",)]
    if exhaustive and dtype == "float32":
        for start, stop in dom.core_bit_ranges():
            for sign in (0, _sign_bit(np.float32)):
                for a in range(start, stop, chunk):
                    out.append(("bits", a, min(a + chunk, stop), sign))
        binades = dom.tail_binades()
        per_task = max(1, chunk // (2 * tail + 4))
        for i in range(0, len(binades), per_task):
            out.append(("tail", seed * 7919 + i, tuple(binades[i:i + per_task]), tail))
    else:
        for i in range(math.ceil(sample / chunk)):
            out.append(("random", seed * 7919 + i, min(chunk, sample - i * chunk)))
    return out


def task_points(case: Case, task: tuple) -> int:
    """Number of points a task will test (for progress and plans)."""
    kind = task[0]
    if kind == "bits":
        return task[2] - task[1]
    if kind == "tail":
        return len(task[2]) * 2 * (task[3] + 2)
    if kind in ("random", "rows"):
        return task[2]
    return 0


def _elementwise_inputs(case: Case, task: tuple) -> np.ndarray:
    dtype = DTYPES[case.dtype]
    dom = domain(case.act, case.form, case.dtype)
    kind = task[0]
    if kind == "values":
        return np.concatenate([_check.special_values(dtype),
                               _kink_neighbourhoods(case.act, dtype)])
    if kind == "bits":
        _, start, stop, sign = task
        bits = np.arange(start, stop, dtype=np.uint64)
        if sign:
            bits |= np.uint64(sign)
        return _from_bits(bits, dtype)
    rng = np.random.default_rng(task[1])
    if kind == "tail":
        return _tail_binades(rng, dom, task[2], task[3])
    if kind == "random":
        n = task[2]
        core = _random_core(rng, dom, n // 2)
        tails = _random_tails(rng, dom, n // 4)
        check = _check.sample(dtype, n - core.size - tails.size, seed=task[1])
        return np.concatenate([core, tails, check])
    raise ValueError(f"unknown task {kind!r}")


def _axis_rows(case: Case, task: tuple):
    """Groups of random rows (one 2-D array per row length)."""
    dtype = DTYPES[case.dtype]
    rng = np.random.default_rng(task[1])
    left = task[2]
    while left > 0:
        length = int(min(left, np.exp(rng.uniform(0.0, math.log(4096.0)))))
        rows = max(1, min(left // length, int(rng.integers(1, 64))))
        scale = np.exp(rng.uniform(math.log(1e-3), math.log(1e3), (rows, 1)))
        shift = np.where(rng.random((rows, 1)) < 0.2, rng.uniform(-1e4, 1e4, (rows, 1)), 0.0)
        x = rng.normal(0.0, 1.0, (rows, length)) * scale + shift
        # rows of equal logits (and below, equal grads): log_softmax's vjp cancels
        # by ~53 bits in every element there
        equal = rng.random((rows, 1)) < 0.05
        x = np.where(equal, x[:, :1], x)
        masked = (rng.random((rows, 1)) < 0.2) & (rng.random((rows, length)) < 0.1)
        x[masked] = -np.inf
        special = rng.random((rows, length)) < 1e-4
        x[special] = rng.choice([np.inf, np.nan, -np.inf], int(special.sum()))
        x = x.astype(dtype)
        grad: np.ndarray = rng.normal(0.0, 1.0, x.shape).astype(dtype)
        grad = np.where(equal, grad[:, :1], grad)
        left -= x.size
        yield x, grad


@dataclass
class Partial:
    """The result of one task."""

    max_ulp: float
    x: float
    grad: Optional[float]
    row_length: Optional[int]
    points: int
    exceeded: int


def _elementwise_blocks(case: Case, task: tuple):
    """(x, grad, errors) for the task's points, EVAL_BLOCK at a time."""
    xs = _elementwise_inputs(case, task)
    grads = None
    if case.form.startswith("backward"):
        rng = np.random.default_rng(zlib.crc32(repr(task).encode()))
        grads = _grad(rng, xs.size, DTYPES[case.dtype])
    for i in range(0, xs.size, EVAL_BLOCK):
        x = xs[i:i + EVAL_BLOCK]
        grad = None if grads is None else grads[i:i + EVAL_BLOCK]
        yield x, grad, _check.form_errors(case.act, case.form, x, case.params, grad)


def measure(case: Case, task: tuple) -> Partial:
    """Run one task."""
    best = Partial(-1.0, math.nan, None, None, 0, 0)
    act = case.act
    if act.kind == "axis":
        groups = ((x, grad, _check.axis_form_errors(act, case.form, x, -1, grad, per="slice"))
                  for x, grad in _axis_rows(case, task))
    else:
        groups = _elementwise_blocks(case, task)
    for x, grad, err in groups:
        if err.size == 0:
            continue
        i = int(np.argmax(err))
        best.points += err.size
        best.exceeded += int(np.count_nonzero(~(err <= case.bound)))
        if err.flat[i] > best.max_ulp:
            best.max_ulp = float(err.flat[i])
            best.x = float(x.flat[i])
            best.grad = float(grad.flat[i]) if case.form.startswith("backward") else None
            best.row_length = x.shape[-1] if act.kind == "axis" else None
    return best


# ---- running: all tasks of all cases, in a pool ------------------------------------------

@dataclass
class Result:
    """The measured accuracy of one case."""

    function: str
    dtype: str
    form: str
    max_ulp: float
    x: float
    grad: Optional[float]
    row_length: Optional[int]
    points: int
    exhaustive_points: int
    domain: str
    bound: float
    exceeded: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exceeded == 0


def _worker_init():
    from . import set_num_threads
    set_num_threads(1)  # the pool is the parallelism


def _run_task(item):
    index, case, task = item
    return index, task_points(case, task), measure(case, task)


def run(selected: Sequence[Case], exhaustive: bool = False, sample: int = DEFAULT_SAMPLE,
        tail: int = DEFAULT_TAIL, jobs: int = 1, seed: int = 0, chunk: int = CHUNK,
        progress=None) -> Iterator[Result]:
    """Measure every case; yield its Result as soon as all its tasks are done."""
    work = [(i, case, task) for i, case in enumerate(selected)
            for task in tasks(case, exhaustive, sample, tail, seed, chunk)]
    todo = {i: 0 for i in range(len(selected))}
    for i, _, _ in work:
        todo[i] += 1
    total = sum(task_points(case, task) for _, case, task in work)
    acc = {i: Partial(-1.0, math.nan, None, None, 0, 0) for i in todo}
    started: Dict[int, Optional[float]] = {i: None for i in todo}
    done_points = 0
    t0 = time.perf_counter()
    pool = None
    results: Iterable[Any]
    if jobs > 1:
        pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_init)
        results = pool.imap(_run_task, work)   # in order: cases finish one after another
    else:
        results = map(_run_task, work)
    try:
        for i, npoints, part in results:
            case = selected[i]
            if started[i] is None:
                started[i] = time.perf_counter()
            a = acc[i]
            a.points += part.points
            a.exceeded += part.exceeded
            if part.max_ulp > a.max_ulp:
                a.max_ulp, a.x, a.grad, a.row_length = part.max_ulp, part.x, part.grad, part.row_length
            done_points += npoints
            if progress is not None:
                progress(case, done_points, total, time.perf_counter() - t0)
            todo[i] -= 1
            if todo[i] == 0:
                dom = domain(case.act, case.form, case.dtype) if case.act.kind != "axis" else None
                exh = exhaustive and dom is not None and case.dtype == "float32"
                yield Result(case.label, case.dtype, case.form, max(a.max_ulp, 0.0), a.x, a.grad,
                             a.row_length, a.points,
                             dom.core_size() if exh and dom is not None else 0,
                             dom.describe() if exh and dom is not None else "sampled",
                             case.bound, a.exceeded, time.perf_counter() - (started[i] or t0))
    finally:
        if pool is not None:
            pool.terminate()


# ---- output ---------------------------------------------------------------------------------

def _fmt_x(v: float, dtype: str = "float64") -> str:
    """v as the shortest decimal that identifies it in dtype."""
    return str(DTYPES[dtype](v))


def _fmt_points(n: int) -> str:
    return f"{n:.3g}" if n >= 10**6 else str(n)


def text_table(results: Sequence[Result]) -> str:
    lines = [f"{'function':<27} {'dtype':<7} {'form':<10} {'max ULP':>9} {'bound':>5}  "
             f"{'points':>9}  {'at x':<18} domain"]
    for r in results:
        at = _fmt_x(r.x, r.dtype) + (f" (grad {r.grad:.4g})" if r.grad is not None else "")
        if r.row_length is not None:
            at += f" (row of {r.row_length})"
        lines.append(f"{r.function:<27} {r.dtype:<7} {r.form:<10} {r.max_ulp:>9.4g} "
                     f"{r.bound:>5g}  {_fmt_points(r.points):>9}  {at:<18} "
                     f"{r.domain}{'' if r.ok else f'  EXCEEDED at {r.exceeded} points'}")
    return "\n".join(lines)


def markdown(results: Sequence[Result]) -> str:
    """A README table: one row per function, one column per dtype and form,
    each cell the max error in ULPs and where it occurs."""
    columns = list(dict.fromkeys((r.dtype, r.form) for r in results))
    rows: Dict[Any, Any] = {}
    for r in results:
        rows.setdefault(r.function, {})[(r.dtype, r.form)] = r
    head = ["function"] + [f"{d} {FORM_LABELS[f]}" for d, f in columns] + ["bound (f / f′)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for function, cells in rows.items():
        line = [f"`{function}`"]
        for col in columns:
            r = cells.get(col)
            if r is None:
                line.append("—")
            else:
                where = f"x = {_fmt_x(r.x, r.dtype)}" if r.max_ulp > 0 else ""
                mark = "" if r.ok else " **over bound**"
                line.append(f"{r.max_ulp:.3g}" + (f" ({where})" if where else "") + mark)
        act = REGISTRY[function.split("(")[0]]
        fb, db = act.ulp_bound("forward"), act.ulp_bound("derivative")
        line.append(f"{fb:g}" if act.kind == "axis" or fb == db else f"{fb:g} / {db:g}")
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def summary(results: Sequence[Result]) -> str:
    """What was tested, per dtype: the exhaustive domains and the samples."""
    lines = []
    for dtype in dict.fromkeys(r.dtype for r in results):
        rs = [r for r in results if r.dtype == dtype]
        lines.append(f"{dtype}: {sum(r.points for r in rs):.3g} points in {len(rs)} cases")
        by_domain: Dict[Any, Any] = {}
        for r in rs:
            by_domain.setdefault(r.domain, []).append(f"{r.function} {FORM_LABELS[r.form]}")
        common = max(by_domain, key=lambda d: len(by_domain[d]))
        for d, labels in by_domain.items():
            what = "random points" if d == "sampled" else f"every {dtype} with {d}"
            if d != common:
                who = ", ".join(labels)
            else:
                who = "the others" if len(by_domain) > 1 else "all"
            lines.append(f"  {what}: {who}")
    return "\n".join(lines)


def _progress_printer(stream, interval: float):
    last = [0.0]
    tty = stream.isatty()

    def show(case: Case, done: int, total: int, elapsed: float):
        now = time.perf_counter()
        if now - last[0] < interval and done < total:
            return
        last[0] = now
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else math.inf
        msg = (f"{100 * done / max(total, 1):5.1f}%  {done:.3e}/{total:.3e} points  "
               f"{rate:.3g}/s  elapsed {elapsed / 60:.1f} min  eta {eta / 60:.1f} min  "
               f"[{case.label} {case.dtype} {case.form}]")
        stream.write(("\r" + msg + "\033[K") if tty else msg + "\n")
        stream.flush()
    return show


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyact.accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", nargs="+", choices=list(REGISTRY), metavar="NAME",
                        help="registry functions (default: all)")
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    parser.add_argument("--forms", nargs="+", choices=list(FORMS), default=list(FORMS),
                        help="forms (default: all; the axis functions have forward and "
                             "backward_y)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--exhaustive", action="store_true",
                      help="float32: every float in the core (see above); float64 and the "
                           "axis functions are still sampled (--sample)")
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, metavar="N",
                        help=f"points per sampled case (default {DEFAULT_SAMPLE})")
    parser.add_argument("--tail", type=int, default=DEFAULT_TAIL, metavar="N",
                        help=f"random points per tail binade and sign with --exhaustive "
                             f"(default {DEFAULT_TAIL})")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="worker processes (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=CHUNK, metavar="N",
                        help=f"points per task (default {CHUNK}); bounds the memory")
    parser.add_argument("--plan", action="store_true",
                        help="print the cases and their number of points, measure nothing")
    parser.add_argument("--markdown", action="store_true",
                        help="print a README table (instead of the plain one)")
    parser.add_argument("--json", metavar="PATH", help="also write every result to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--from-json", nargs="+", metavar="PATH",
                        help="print the tables of runs saved with --json, measure nothing")
    args = parser.parse_args(argv)
    if args.from_json:
        saved = []
        for path in args.from_json:
            with open(path) as f:
                saved += [Result(**r) for r in json.load(f)["results"]]
        saved = [r for r in saved if r.dtype in args.dtypes and r.form in args.forms and (
            not args.functions or r.function.split("(")[0] in args.functions)]
        print(markdown(saved) if args.markdown else text_table(saved))
        print()
        print(summary(saved))
        return 0 if all(r.ok for r in saved) else 1
    if args.sample < 1 or args.tail < 0 or args.jobs < 1 or args.chunk < 1:
        parser.error("--sample, --jobs and --chunk must be positive, --tail non-negative")

    selected = cases(args.functions, args.dtypes, args.forms)
    if not selected:
        parser.error("no kernel matches the selection")
    if args.plan:
        grand = 0
        for case in selected:
            n = sum(task_points(case, t) for t in tasks(case, args.exhaustive, args.sample,
                                                         args.tail, args.seed, args.chunk))
            grand += n
            where = ("sampled" if case.act.kind == "axis" or not args.exhaustive
                     or case.dtype != "float32"
                     else domain(case.act, case.form, case.dtype).describe())
            print(f"{case.label:<27} {case.dtype:<7} {case.form:<10} {n:>14,d}  {where}")
        print(f"total {grand:,d} points")
        return 0

    progress = None if args.quiet else _progress_printer(sys.stderr, 1.0 if sys.stderr.isatty() else 60.0)
    t0 = time.perf_counter()
    results = []
    for r in run(selected, args.exhaustive, args.sample, args.tail, args.jobs, args.seed,
                 args.chunk, progress):
        results.append(r)
        if not args.quiet:
            sys.stderr.write(("\r\033[K" if sys.stderr.isatty() else "")
                             + f"{r.function} {r.dtype} {r.form}: {r.max_ulp:.4g} ULP at x = "
                             f"{_fmt_x(r.x, r.dtype)} ({_fmt_points(r.points)} points, {r.seconds:.0f} s)"
                             f"{'' if r.ok else '  OVER THE BOUND'}\n")
    elapsed = time.perf_counter() - t0
    print(markdown(results) if args.markdown else text_table(results))
    print()
    print(summary(results))
    over = [r for r in results if not r.ok]
    print(f"{len(results)} cases in {elapsed / 60:.1f} min; "
          + ("all within their bounds" if not over else
             f"{len(over)} EXCEED THEIR BOUND: "
             + ", ".join(f"{r.function} {r.dtype} {r.form}" for r in over)))
    if args.json:
        from . import _config
        with open(args.json, "w") as f:
            json.dump({"config": _config.config(), "argv": sys.argv[1:] if argv is None else list(argv),
                       "seconds": elapsed, "results": [asdict(r) for r in results]},
                      f, indent=1, default=str)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
