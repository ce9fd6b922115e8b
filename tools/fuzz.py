"""Fuzz pyact's public API with hypothesis.

    python tools/fuzz.py --minutes 10            (from the repository root, after a build)
    python tools/fuzz.py --examples 500 --functions gelu softmax --seed 3

Every example is one call of a public function of the registry (all forms:
NAME, NAME_, NAME_derivative, NAME_backward), decoded from hypothesis's byte
stream into:

* arrays of any dtype (float16/32/64 in either byte order, bool, integers,
  complex, object, strings, long double, datetime), any shape up to 4-D
  (empty and 0-d included) and any layout: C/F order, strided and negative
  strides, transposed, unaligned, read-only, zero strides; or a list, tuple,
  Python scalar, None, string or other object; values mixing random floats
  with zeros, infinities, NaN, subnormals and the float range's edges;
* parameters: valid values, or wrong types (str, bool, complex, None, lists,
  arrays), non-finite, too large for a float, outside their rule, missing,
  unknown; axis values in and out of range, huge, or not integers;
* call patterns: out of place, out= (fresh, the input itself, overlapping the
  input, of the wrong dtype/shape, read-only, not an array), in place,
  backward with x=, y= (from f(x) or arbitrary), both or neither.

A model of the documented rules (README, "Rules") says whether the call must
succeed or raise, and which error.  Checked: nothing but TypeError,
ValueError or NumPy's AxisError is raised, and only when the model says so;
on an error nothing is written; on success the result has the right type,
dtype and shape, matches pyact.reference within the registry's ULP bound
(1 ULP of float16 for float16 results; backward of the axis functions in
ULPs of the row's largest value), in-place and out= return their array, and
no memory outside the written array changes; no warning of any kind is
emitted (also under np.errstate(all="raise")).

Values not judged (counted in the statistics instead): backward from a y
that f never returns (its formulas differ outside f's range; the call itself
is still checked), grad * f' where that is inf * 0 in the reference's
precision, and two known limitations: float64 backward where f' is subnormal
(or overflows), and slices of the softmax family's backward whose sums are
infinite.

On a failure hypothesis shrinks the example and the script prints it and
exits with status 1 (with --keep-going it goes on and counts failures).
"""
from __future__ import annotations

import argparse
import math
import operator
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from decimal import Decimal

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed as hypothesis_seed, settings
from hypothesis import strategies as st

# the checkout this file is in (built in place), not some other installed pyact
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pyact  # noqa: E402
from pyact import _check  # noqa: E402
from pyact import reference as ref  # noqa: E402
from pyact._registry import REGISTRY, Activation  # noqa: E402

try:
    from numpy.exceptions import AxisError
except ImportError:  # pragma: no cover - NumPy < 1.25
    AxisError = np.AxisError

# ---- what the examples are made of ----------------------------------------------------

FLOAT_DTYPES = ["<f4", "<f8", ">f4", ">f8", "<f2", ">f2"]
OTHER_NUMERIC = ["?", "i1", "<i2", ">i4", "<i8", "u1", "<u8"]
UNSUPPORTED = ["<c8", "<c16", "O", "U3", "S2", "g", "<M8[s]", "<m8[s]"]
SPECIAL_FLOATS = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 2.2250738585072014e-308,
                  1e-45, 1.1754943508222875e-38, 6e-8, 6.1e-5, 1e-30, -1e-30, 65504.0,
                  3.4028234663852886e38, 1.7976931348623157e308, -1.7976931348623157e308,
                  1e30, -1e30, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 6.0, 20.0, -0.75, -1.2785,
                  88.7, -103.9, 709.8, -745.2, 1e4, -1e4]


def float_elements():
    return st.one_of(st.sampled_from(SPECIAL_FLOATS), st.floats(-40, 40),
                     st.floats(allow_nan=True, allow_infinity=True))


@dataclass
class Space:
    """Every buffer the example's arrays live in, to check what a call writes."""

    buffers: list = field(default_factory=list)

    def new(self, nbytes: int, fill: bytes) -> np.ndarray:
        buf = np.frombuffer(bytearray((fill * (nbytes // max(len(fill), 1) + 1))[:nbytes]),
                            dtype=np.uint8)
        self.buffers.append(buf)
        return buf

    def snapshot(self):
        return [b.copy() for b in self.buffers]

    def changed(self, snap, allowed=()):
        """Bytes that changed outside the memory of the arrays in `allowed`."""
        bad = []
        for buf, old in zip(self.buffers, snap):
            diff = buf != old
            for a in allowed:
                if isinstance(a, np.ndarray) and np.shares_memory(a, buf):
                    diff &= ~_footprint(a, buf)
            if diff.any():
                bad.append(int(np.flatnonzero(diff)[0]))
        return bad


def _footprint(a: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """Mask of the bytes of buf that the elements of view a occupy."""
    mask = np.zeros(buf.shape, bool)
    start = a.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    view = np.lib.stride_tricks.as_strided(mask[start:], a.shape + (a.itemsize,),
                                           a.strides + (1,))
    view[...] = True
    return mask


@st.composite
def layouts(draw, ndim):
    """(order of axes in memory, step per axis, reversed axes, byte offset)."""
    perm = draw(st.permutations(range(ndim))) if ndim > 1 else list(range(ndim))
    steps = [draw(st.sampled_from([1, 1, 1, 2, 3])) for _ in range(ndim)]
    flips = [draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else False for _ in range(ndim)]
    offset = draw(st.sampled_from([0, 0, 0, 1, 8]))  # 1: unaligned
    return perm, steps, flips, offset


def make_array(space: Space, dtype: np.dtype, shape, layout, values, zero_strides=False):
    """An array of `values` (a flat list) viewing a fresh buffer in the given layout."""
    if dtype.kind == "O":                  # object arrays cannot view raw memory
        values = [0.0] * int(np.prod(shape)) if values is None else values
        return np.array(values + [None], dtype=object)[:-1].reshape(shape)
    perm, steps, flips, offset = layout
    itemsize = dtype.itemsize
    strides = [0] * len(shape)
    stride = itemsize
    for axis in reversed(perm):            # perm[-1] varies fastest
        strides[axis] = stride * steps[axis]
        stride *= max(shape[axis], 1) * steps[axis]
    if zero_strides and shape:
        strides[-1] = 0
    start = offset
    for axis, flip in enumerate(flips):
        if flip and shape[axis] > 1:
            start += strides[axis] * (shape[axis] - 1)
            strides[axis] = -strides[axis]
    nbytes = offset + max(stride, itemsize) + 16
    buf = space.new(nbytes, b"\x7f\xc0\x01\x00\x5a\xa5\x00\xff")
    a = np.ndarray(shape, dtype, buffer=buf, offset=start, strides=strides)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat = np.array(values or [], dtype=object if dtype.kind in "USMm" else None)
        if a.size and values is not None:
            a[...] = flat[:1].astype(dtype).reshape(()) if zero_strides else \
                flat.astype(dtype).reshape(shape)
    return a


@st.composite
def values_for(draw, dtype: np.dtype, n: int):
    kind = dtype.kind
    if kind == "f":
        elements = float_elements()
    elif kind == "b":
        elements = st.booleans()
    elif kind in "iu":
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    elif kind == "c":
        elements = st.builds(complex, float_elements(), float_elements())
    elif kind in "US":
        elements = st.text("ab1.", max_size=2)
    elif kind in "Mm":
        elements = st.integers(-10**9, 10**9)
    else:  # object: numbers and others
        elements = st.one_of(float_elements(), st.none(), st.text(max_size=2))
    return draw(st.lists(elements, min_size=n, max_size=n))


@st.composite
def shapes(draw):
    if draw(st.integers(0, 40)) == 0:       # now and then an array that is threaded
        return (draw(st.integers(1, 3)) * 70_000,)
    return tuple(draw(st.lists(st.integers(0, 5), max_size=4)))


@st.composite
def arrays(draw, space: Space, shape=None, dtype=None, sloppy=True):
    """An ndarray of a drawn dtype, shape and layout (sloppy: also of dtypes
    pyact does not take, read-only or with zero strides)."""
    if dtype is None:
        pool = FLOAT_DTYPES * 4 + (OTHER_NUMERIC + UNSUPPORTED if sloppy else ["?", "<i8"])
        dtype = np.dtype(draw(st.sampled_from(pool)))
    if shape is None:
        shape = draw(shapes())
    n = int(np.prod(shape))
    if n > 1000:   # large: a cheap layout and random values
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        a = make_array(space, dtype, shape, ([0], [1], [False], 0), None)
        with np.errstate(all="ignore"):
            a[...] = (rng.normal(0, 10, n) if dtype.kind == "f" else rng.integers(0, 3, n)).astype(dtype)
        return a
    layout = draw(layouts(len(shape)))
    zero = sloppy and len(shape) > 0 and draw(st.integers(0, 7)) == 0
    a = make_array(space, dtype, shape, layout, draw(values_for(dtype, n)), zero_strides=zero)
    if zero or (sloppy and draw(st.integers(0, 6)) == 0):
        a.flags.writeable = False
    return a


@st.composite
def array_likes(draw, space: Space, shape=None, dtype=None, sloppy=True):
    """Mostly arrays; sometimes lists, scalars or (sloppy) things that are not
    arrays at all."""
    choice = draw(st.integers(0, 19))
    if choice == 0 and shape is None and sloppy:
        return draw(st.sampled_from([None, "abc", b"xy", object(), {"a": 1}, [1, "a"],
                                     [[1.0, 2.0], [3.0]], 1 + 2j, [1 + 2j], Fraction(1, 3)]))
    if choice == 1:
        a = draw(arrays(space, shape=shape, dtype=dtype, sloppy=sloppy))
        return a.tolist() if a.dtype.kind in "fbiu" else a
    if choice == 2 and shape in (None, ()):
        return draw(st.one_of(float_elements(), st.integers(-5, 5), st.booleans()))
    return draw(arrays(space, shape=shape, dtype=dtype, sloppy=sloppy))


BAD_REALS = ["0.5", b"1", None, True, 1 + 0j, [0.5], np.array([0.5]), object(), 10**400,
             -10**400, Decimal("sNaN"), math.nan, math.inf, -math.inf]


@st.composite
def param_values(draw, act: Activation, sloppy=True):
    """Keyword arguments: valid, or (sloppy) with one or more of them wrong."""
    kwargs = {}
    for p in act.params:
        mode = draw(st.integers(0, 9) if sloppy else st.sampled_from([0, 3, 4, 5, 6, 7, 8]))
        if p.required and not sloppy:
            mode = max(mode, 3)
        if mode == 0 and not p.required:
            continue                                   # the default
        if mode == 0:
            continue                                   # a required one missing
        if p.is_choice:
            kwargs[p.name] = (draw(st.sampled_from(p.choices)) if mode > 2 else
                              draw(st.sampled_from(["None", "TANH", "", None, 1, b"tanh"])))
            continue
        if mode == 1:
            kwargs[p.name] = draw(st.sampled_from(BAD_REALS))
        elif mode == 2:
            kwargs[p.name] = draw(st.sampled_from([0.0, -0.0, -1.0, 1e300, -1e300, 5e-324, 3e38]))
        else:
            v = draw(st.floats(-3, 3) if mode < 8 else st.floats(-1e6, 1e6))
            kind = draw(st.integers(0, 6))
            if not sloppy:   # within the parameter's rule
                v = abs(v) if p.rule == "nonnegative" else v
                v = (abs(v) or 1.0) if p.rule == "positive" else (v or 1.0) if p.rule == "nonzero" else v
            kwargs[p.name] = {0: v, 1: np.float32(v), 2: np.float64(v), 3: np.array(v),
                              4: int(round(v)), 5: Fraction(v).limit_denominator(100),
                              6: Decimal(repr(v))}[kind]
            if not sloppy and kind == 4 and p.rule != "any" and kwargs[p.name] <= 0:
                kwargs[p.name] = v
    if not sloppy and act.rule is not None:
        values = {**act.defaults(), **{k: float(v) for k, v in kwargs.items()}}
        if set(values) >= {act.rule.lhs, act.rule.rhs} and not act.rule.holds(values):
            kwargs[act.rule.lhs], kwargs[act.rule.rhs] = values[act.rule.rhs], values[act.rule.lhs]
    if sloppy and draw(st.integers(0, 20)) == 0:
        kwargs[draw(st.sampled_from(["alpha", "beta", "lambd", "axis", "foo", "inplace"]))] = 1.0
    return kwargs


# ---- the model: what the documented rules say ----------------------------------------------

class Expect(Exception):
    """The model's verdict: the call must raise one of `errors`."""

    def __init__(self, *errors):
        super().__init__(errors)
        self.errors = errors


def model_params(act: Activation, kwargs: dict, for_y: bool) -> dict:
    """The parameter values the call runs with, or raise Expect."""
    values, problems = {}, []
    unknown = set(kwargs) - {p.name for p in act.params}
    if unknown:
        problems.append(TypeError)
    for p in act.params:
        if p.name not in kwargs:
            if p.required:
                problems.append(TypeError)
            else:
                values[p.name] = p.default
            continue
        v = kwargs[p.name]
        if p.is_choice:
            if isinstance(v, str) and v in p.choices:
                values[p.name] = v
            else:   # a wrong value, or a wrong type (the rules allow either error)
                problems += [ValueError] if isinstance(v, str) else [ValueError, TypeError]
            continue
        if isinstance(v, (bool, str, bytes, complex)) or v is None or isinstance(v, list):
            problems.append(TypeError)
            continue
        try:
            f = float(v)
        except OverflowError:
            problems.append(ValueError)     # a real number, just too large
            continue
        except (TypeError, ValueError):
            problems.append(TypeError)
            continue
        if not math.isfinite(f):
            problems.append(ValueError)
        elif (p.rule == "nonzero" and f == 0) or (p.rule == "nonnegative" and f < 0) or (
                p.rule == "positive" and f <= 0):
            problems.append(ValueError)
        else:
            values[p.name] = f
    if problems:
        raise Expect(*problems)
    for rule in (act.rule, act.y_rule if for_y else None):
        if rule is not None and not rule.holds(values):
            raise Expect(ValueError)
    return values


def model_array(v, problems: list):
    """(array or None, compute dtype or None) as the out-of-place forms see v;
    what is wrong with it goes to `problems`."""
    if v is None:
        problems.append(TypeError)
        return None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = v if isinstance(v, np.ndarray) else np.asarray(v)
    except (TypeError, ValueError):
        problems.append(TypeError)
        return None, None
    k, size = a.dtype.kind, a.dtype.itemsize
    if k == "f" and size in (2, 4, 8):
        return a, np.dtype(np.float64 if size == 8 else np.float32)
    if k in "biu":
        return a, np.dtype(np.float64)
    problems.append(TypeError)
    return a, None


def model_result_dtype(pairs):
    """(compute, result) dtype of the inputs, or (None, None) if one has no compute dtype."""
    if any(c is None for _, c in pairs):
        return None, None
    if all(a.dtype.kind == "f" and a.dtype.itemsize == 2 for a, _ in pairs):
        return np.dtype(np.float32), np.dtype(np.float16)
    c = np.dtype(np.float64) if any(c == np.float64 for _, c in pairs) else np.dtype(np.float32)
    return c, c


def model_in_place(x, problems: list):
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        problems.append(TypeError)
        return None
    if not x.flags.writeable:
        problems.append(ValueError)
    return np.dtype(np.float32 if x.dtype.itemsize == 4 else np.float64)


def model_out(out, shape, result_dtype, problems: list):
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        problems.append(TypeError)
        return
    if result_dtype is not None and out.dtype.newbyteorder("=") != result_dtype:
        problems.append(TypeError)
    if (shape is not None and out.shape != shape) or not out.flags.writeable:
        problems.append(ValueError)


def model_axis(axis, ndim, problems: list):
    try:
        axis = operator.index(axis)
    except TypeError:
        problems.append(TypeError)
        return None
    if ndim is not None and not -ndim <= axis < ndim:
        problems.append(AxisError)
        return None
    return None if ndim is None else axis % ndim


def model_params_into(act, kwargs, for_y, problems: list):
    try:
        return model_params(act, kwargs, for_y)
    except Expect as e:
        problems += e.errors
        return None


# ---- one example -------------------------------------------------------------------------

@dataclass
class Call:
    name: str
    act: Activation
    form: str                      # forward, inplace, derivative, backward
    args: tuple
    kwargs: dict
    space: Space
    y_from_f: bool = False         # backward: y is pyact's own f(x)
    notes: list = field(default_factory=list)   # statistics to count


def _view_of_same_buffer(space, a: np.ndarray, draw):
    """An array of a's shape and dtype overlapping a's memory (shifted, maybe reversed)."""
    n = a.size
    shift = draw(st.integers(0, 3))
    buf = space.new((n + shift) * a.itemsize + 8, b"\x00")
    flat = np.ndarray((n + shift,), a.dtype, buffer=buf)
    with np.errstate(all="ignore"):
        flat[:n] = a.reshape(-1)
        flat[n:] = flat[:shift]
    x = flat[:n]
    out = flat[shift:shift + n]
    if draw(st.booleans()):
        out = out[::-1]
    return x.reshape(a.shape), out.reshape(a.shape)


def _shape_of(v) -> tuple:
    """np.shape(v), or () for what NumPy cannot make an array of (ragged lists)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.shape(v)
    except (TypeError, ValueError):
        return ()


@st.composite
def calls(draw, names):
    space = Space()
    name = draw(st.sampled_from(names))
    base = name[:-1] if name.endswith("_") and name[:-1] in REGISTRY else name
    form = "forward"
    for suffix, f in (("_derivative", "derivative"), ("_backward", "backward")):
        if name.endswith(suffix):
            base, form = name[: -len(suffix)], f
    if name.endswith("_") and name[:-1] in REGISTRY:
        form = "inplace"
    act = REGISTRY[base]
    sloppy = draw(st.integers(0, 2)) == 0     # a third of the calls break the rules freely
    kwargs = {}
    if act.kind != "axis":
        kwargs.update(draw(param_values(act, sloppy)))
    if form == "backward":
        grad = draw(array_likes(space, sloppy=sloppy))
        shape = np.shape(grad) if isinstance(grad, np.ndarray) else None
        if sloppy and draw(st.integers(0, 4)) == 0:
            shape = None                       # a shape mismatch now and then
        patterns = ["x", "y", "y_of_x"] if (act.backward_y or act.kind == "axis") else ["x"]
        if act.kind == "axis":
            patterns = ["y", "y_of_x"]
        pattern = draw(st.sampled_from(patterns + (["x", "y", "both", "neither"] if sloppy else [])))
        saved, y_from_f = None, False
        if pattern != "neither":
            saved = draw(array_likes(space, shape=shape, dtype=None, sloppy=sloppy))
        if pattern == "y_of_x" and isinstance(saved, np.ndarray) and saved.dtype.kind == "f":
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                try:
                    fx = getattr(pyact, base)(saved, **({k: v for k, v in kwargs.items()
                                                         if k != "axis"} if act.kind != "axis"
                                                        else {}))
                    saved = make_array(space, np.asarray(fx).dtype, np.shape(fx),
                                       draw(layouts(np.ndim(fx))), np.ravel(fx).tolist())
                    y_from_f = True
                except Exception:
                    pass
        if pattern in ("x", "both"):
            kwargs["x"] = saved
        if pattern in ("y", "y_of_x", "both"):
            kwargs["y"] = saved if pattern != "both" else draw(array_likes(space, shape=shape))
        args = (grad,)
        first = grad
    else:
        first = draw(array_likes(space, sloppy=sloppy))
        args = (first,)
    if act.kind == "axis" and (sloppy or draw(st.booleans())):
        ndim = len(_shape_of(first))
        kwargs["axis"] = draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1)) if not sloppy else \
            draw(st.one_of(st.integers(-4, 4), st.sampled_from(
                [2**70, -2**63, np.int64(1), np.int32(-1), True, 1.0, "0", None, (0,)])))
    if form != "inplace":
        o = draw(st.integers(0, 9) if sloppy else st.sampled_from([0, 0, 1, 2, 3, 6]))
        if o == 1 and isinstance(first, np.ndarray):
            kwargs["out"] = first                               # out is the input
        elif o == 2 and isinstance(first, np.ndarray) and first.size and first.dtype.kind == "f":
            x, out = _view_of_same_buffer(space, first, draw)  # out overlaps the input
            args = (x,)
            kwargs["out"] = out
        elif o == 6 and form == "backward":     # out overlaps the saved x or y
            key = "x" if kwargs.get("x") is not None else "y"
            saved = kwargs.get(key)
            if isinstance(saved, np.ndarray) and saved.size and saved.dtype.kind == "f":
                kwargs[key], kwargs["out"] = _view_of_same_buffer(space, saved, draw)
        elif o in (3, 4, 6):
            shape = _shape_of(first) if not sloppy or draw(st.integers(0, 5)) else draw(shapes())
            inputs = [first] + ([kwargs.get("x") if kwargs.get("x") is not None
                                 else kwargs.get("y")] if form == "backward" else [])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, result = model_result_dtype([model_array(v, []) for v in inputs])
            dt = draw(st.sampled_from(FLOAT_DTYPES + ["<i8", "<c16"])) if (
                sloppy or result is None) else result.newbyteorder(draw(st.sampled_from("<>")))
            out = make_array(space, np.dtype(dt), shape, draw(layouts(len(shape))),
                             [9.0] * int(np.prod(shape)))
            if sloppy and draw(st.integers(0, 9)) == 0:
                out.flags.writeable = False
            kwargs["out"] = out
        elif o == 5:
            kwargs["out"] = draw(st.sampled_from([[0.0], 0.0, "out"]))
    return Call(name, act, form, args, kwargs, space,
                y_from_f=form == "backward" and y_from_f and kwargs.get("y") is not None)


def expected_outcome(call: Call):
    """(compute dtype, result dtype, shape, params, axis) for a call that must
    succeed, or raise Expect with every error the rules allow for it (a call
    with several problems may report any of them)."""
    act, form, kw = call.act, call.form, dict(call.kwargs)
    problems: list = []
    out = kw.pop("out", None)
    params, axis, has_y = {}, None, False
    if form == "backward":
        has_x, has_y = kw.get("x") is not None, kw.get("y") is not None
        if act.kind == "axis":
            if "y" not in kw or "x" in kw:
                problems.append(TypeError)
            saved_value = kw.get("y")
        else:
            if has_x == has_y or (has_y and not act.backward_y):
                problems.append(TypeError)
            saved_value = kw.get("y") if has_y else kw.get("x")
        kw.pop("x", None)
        kw.pop("y", None)
    if act.kind == "axis":
        axis_value = kw.pop("axis", -1)
        if kw:
            problems.append(TypeError)
    else:
        params = model_params_into(act, kw, has_y, problems)
    if form == "inplace":
        compute = result = model_in_place(call.args[0], problems)
        shape = call.args[0].shape if isinstance(call.args[0], np.ndarray) else None
    elif form == "backward":
        pairs = [model_array(call.args[0], problems), model_array(saved_value, problems)]
        if pairs[0][0] is not None and pairs[1][0] is not None and \
                pairs[0][0].shape != pairs[1][0].shape:
            problems.append(ValueError)
        compute, result = model_result_dtype(pairs)
        shape = pairs[0][0].shape if pairs[0][0] is not None else None
        model_out(out, shape, result, problems)
    else:
        pair = model_array(call.args[0], problems)
        compute, result = model_result_dtype([pair])
        shape = pair[0].shape if pair[0] is not None else None
        model_out(out, shape, result, problems)
    if act.kind == "axis":
        axis = model_axis(axis_value, None if shape is None else len(shape), problems)
    if problems:
        raise Expect(*problems)
    return compute, result, shape, params, axis


# ---- checking a call ------------------------------------------------------------------------

def _as(v, dtype):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(v).astype(dtype)


def _wide(a):
    return a.astype(ref.evaluation_dtype(a.dtype))


def exact_values(call: Call, inputs, compute, params, axis):
    """(the reference result, evaluated one step wider than the compute dtype,
    and the mask of elements where it cannot decide)."""
    act, form = call.act, call.form
    if act.kind == "axis":
        if form == "backward":
            g, y = (_wide(_as(v, compute)) for v in inputs)
            exact = act.reference_derivative(g, y, axis=axis)
        else:
            exact = act.reference(_wide(_as(inputs[0], compute)), axis=axis)
        return exact, np.zeros(exact.shape, bool)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rp = _check.rounded_params(act, params, compute.type)
    x = _wide(_as(inputs[-1], compute))
    if form in ("forward", "inplace", "derivative"):
        exact = (act.reference if form != "derivative" else act.reference_derivative)(x, **rp)
        return exact, np.zeros(exact.shape, bool)
    g = _wide(_as(inputs[0], compute))
    d = (act.reference_derivative_y(x, **rp) if "y" in call.kwargs and call.kwargs["y"] is not None
         else act.reference_derivative(x, **rp))
    with np.errstate(all="ignore"):
        product = g * d
    # inf * f' where the reference's f' is below its own normal range (or 0): NaN
    # or an infinity of either sign, since where it underflows gradually the
    # kernel's f' and the reference's round to 0 at slightly different x (where
    # f' is normal in the reference, the result is +-inf, also where f' underflows
    # in the compute dtype); likewise 0 * inf.  Any answer is accepted there (the
    # second array marks them).
    tiny = np.finfo(d.dtype).tiny
    undecided = np.isinf(g) & (np.abs(d) < tiny) | (g == 0) & np.isinf(d)
    if compute == np.float64:
        # A known limitation: the float64 kernels round f' to a double before
        # multiplying by a finite grad (from y, or where the rare-element test of
        # the backward from x lets it pass), so a subnormal f' brings its absolute
        # error, times grad, into the result, and an f' beyond the double range
        # (celu with alpha < 0) is inf, also for grad 0.  An infinite grad is
        # checked: +-inf wherever the reference's f' is normal.
        info = np.finfo(np.float64)
        outside = (((np.abs(d) < info.tiny) & (d != 0) & np.isfinite(g) & (g != 0))
                   | (np.abs(d) > info.max))
        if outside.any():
            call.notes.append("float64 backward where f' is subnormal or overflows "
                              "(known, not checked)")
        undecided |= outside
    return product, undecided


def errors_in_ulps(call: Call, got, exact, result_dtype, axis, inputs, compute, stats):
    if call.act.kind == "axis" and call.form == "backward":
        err = _check.slice_ulp_error(got, exact, result_dtype, axis)
        # Not checked: slices whose sum(g) or sum(g y) is not finite in the compute
        # dtype (an infinite grad, or finite ones whose sum overflows): the kernels'
        # compensated sums give NaN for the whole slice there (a known limitation).
        with np.errstate(all="ignore"):
            g, y = (_as(v, compute) for v in inputs)
            sums = np.abs(g).sum(axis=axis, keepdims=True) + np.abs(g * y).sum(axis=axis, keepdims=True)
            skip = np.broadcast_to(~np.isfinite(sums), err.shape)
        if skip.any():
            stats["axis backward slices with an infinite sum (not checked)"] += 1
        return np.where(skip, 0.0, err)
    return ref.ulp_error(got, exact, result_dtype.type)


def _describe(v) -> str:
    if isinstance(v, np.ndarray):
        text = np.array2string(v.ravel()[:6], threshold=6, edgeitems=3)
        return (f"array(dtype={v.dtype.str}, shape={v.shape}, strides={v.strides}, "
                f"aligned={v.flags.aligned}, writeable={v.flags.writeable}, values={text}"
                f"{'...' if v.size > 6 else ''})")
    text = repr(v)
    return text if len(text) < 200 else text[:200] + "..."


def describe(call: Call) -> str:
    args = [_describe(a) for a in call.args]
    args += [f"{k}={_describe(v)}" for k, v in call.kwargs.items()]
    return f"pyact.{call.name}({', '.join(args)})"


def check_call(call: Call, stats: Counter, raise_mode: bool):
    try:
        _check_call(call, stats, raise_mode)
    except AssertionError as exc:
        raise AssertionError(f"{describe(call)}"
                             f"{' under np.errstate(all=raise)' if raise_mode else ''}:\n  {exc}") from None


def _check_call(call: Call, stats: Counter, raise_mode: bool):
    func = getattr(pyact, call.name)
    try:
        expected = expected_outcome(call)
        must_raise = None
    except Expect as e:
        expected, must_raise = None, e.errors
    snap = call.space.snapshot()
    inputs = [a.copy() if isinstance(a, np.ndarray) else a for a in call.args]
    saved_kw = call.kwargs.get("x", call.kwargs.get("y"))
    if call.form == "backward":
        inputs.append(saved_kw.copy() if isinstance(saved_kw, np.ndarray) else saved_kw)
    raised = None
    with warnings.catch_warnings(record=True) as caught, np.errstate(
            all="raise" if raise_mode else "warn"):
        warnings.simplefilter("always")
        try:
            result = func(*call.args, **call.kwargs)
        except Exception as exc:   # judged below
            raised = exc
    assert not caught, f"warnings: {[str(w.message) for w in caught]}"
    if raised is not None:
        assert isinstance(raised, (TypeError, ValueError)), f"{type(raised).__name__}: {raised}"
        assert must_raise, f"the rules say this call succeeds, but it raised {raised!r}"
        assert isinstance(raised, tuple(must_raise)), (
            f"raised {type(raised).__name__} ({raised}), the rules say one of "
            f"{sorted({e.__name__ for e in must_raise})}")
        assert not call.space.changed(snap), f"memory written before the {type(raised).__name__}"
        stats["raised " + type(raised).__name__] += 1
        return
    assert must_raise is None, (
        f"the call succeeded, the rules say it raises one of "
        f"{sorted({e.__name__ for e in must_raise})}")
    compute, result_dtype, shape, params, axis = expected
    out = call.kwargs.get("out")
    if call.form == "inplace":
        assert result is call.args[0], "in place must return its argument"
        written = call.args[0]
    elif out is not None:
        assert result is out, "out= must be returned"
        written = out
    else:
        if shape == ():
            assert type(result) is result_dtype.type, f"0-d result is {type(result)}"
        else:
            assert type(result) is np.ndarray, type(result)
        written = None
    got = np.asarray(result)
    assert got.shape == shape, (got.shape, shape)
    assert got.dtype.newbyteorder("=") == result_dtype, (got.dtype, result_dtype)
    assert not call.space.changed(snap, allowed=(written,) if written is not None else ()), \
        "memory outside the result was written"
    if call.form == "backward" and "y" in call.kwargs and not call.y_from_f:
        # a y that f never returns (log_softmax's y > 0, softplus's y < 0, ...):
        # the formulas in y overflow or differ outside f's range, and no result
        # is wrong there; only the call itself is checked
        stats["backward from an arbitrary y (values not checked)"] += 1
    elif got.size:
        exact, undecided = exact_values(call, inputs, compute, params, axis)
        err = errors_in_ulps(call, got.astype(result_dtype), exact, result_dtype, axis,
                             inputs, compute, stats)
        err = np.where(undecided, 0.0, err)
        for note in call.notes:
            stats[note] += 1
        bound = 1.0 if result_dtype.itemsize == 2 else (
            call.act.ulp_bound("forward" if call.form in ("forward", "inplace") else "derivative"))
        worst = float(np.max(err))
        if not worst <= bound:
            i = np.unravel_index(int(np.argmax(err)), err.shape)
            raise AssertionError(
                f"{worst} ULP > {bound} at {i}: got {got[i]!r}, exact {exact[i]!r}, "
                f"inputs {[np.asarray(v)[i] if np.shape(v) == shape else v for v in inputs]}")
    stats["ok"] += 1


# ---- driver --------------------------------------------------------------------------------

def public_names(functions=None):
    """The public functions of these registry entries (default: all): every form."""
    functions = functions or list(REGISTRY)
    return sorted(f + suffix for f in functions for suffix in ("", "_", "_derivative", "_backward")
                  if f + suffix in pyact.__all__)


def run(names, examples=None, minutes=None, seed=0, batch=200, verbose=True, keep_going=False):
    """Fuzz for a number of examples or minutes; returns the statistics.

    A failure (after hypothesis has shrunk it) raises AssertionError, or with
    keep_going is counted in stats["failures"], printed, and the run goes on
    with the next seed."""
    stats = Counter()
    deadline = time.monotonic() + 60 * minutes if minutes else None
    batch = min(batch, examples) if examples else batch

    @settings(max_examples=batch, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(call=calls(names), raise_mode=st.booleans())
    def one(call, raise_mode):
        stats["examples"] += 1
        check_call(call, stats, raise_mode)

    round_ = 0
    t0 = time.monotonic()
    while True:
        if examples is not None and stats["examples"] >= examples:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        try:
            hypothesis_seed(seed * 1_000_003 + round_)(one)()
        except AssertionError as exc:
            if not keep_going:
                raise
            stats["failures"] += 1
            print(f"FAILURE (seed {seed}, round {round_}): {exc}", flush=True)
        round_ += 1
        if verbose:
            print(f"{time.monotonic() - t0:7.0f} s  {stats['examples']} examples: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(stats.items()) if k != "examples"),
                  flush=True)
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, help="run this long (default 1)")
    parser.add_argument("--examples", type=int, help="run this many examples instead")
    parser.add_argument("--functions", nargs="+", choices=list(REGISTRY), metavar="NAME",
                        help="registry functions to fuzz (default: all, every form)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--batch", type=int, default=200, help="examples per hypothesis run")
    parser.add_argument("--keep-going", action="store_true",
                        help="after a failure, report it and go on (exit status 1 at the end)")
    args = parser.parse_args(argv)
    names = public_names(args.functions)
    minutes = args.minutes if args.minutes is not None or args.examples else 1.0
    print(f"fuzzing {len(names)} functions, seed {args.seed}", flush=True)
    try:
        stats = run(names, args.examples, minutes, args.seed, args.batch,
                    keep_going=args.keep_going)
    except AssertionError as exc:
        print(f"FAILURE (seed {args.seed}): {exc}", file=sys.stderr)
        return 1
    print(f"done: {stats['examples']} examples, {stats['failures'] or 'no'} failure(s)")
    return 1 if stats["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
