"""Accuracy check of every kernel against the pure-NumPy reference.

Used by `python -m pyact` (a quick pass) and the test suite: errors are in
ULPs of the result dtype, against pyact.reference evaluated one step wider
(float64 for float32 results, long double for float64 results).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import reference as ref
from ._api import PUBLIC
from ._registry import AXIS, ELEMENTWISE, Activation

DTYPES = (np.float32, np.float64)


def special_values(dtype) -> np.ndarray:
    """Zeros, infinities, NaN, subnormals, huge values and overflow edges."""
    info = np.finfo(dtype)
    tiny = info.smallest_subnormal
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny, 3 * tiny, info.tiny,
              -info.tiny, 1e-30, -1e-30, 1e30, -1e30, info.max, -info.max,
              88.7, -88.7, 103.9, -103.9, 709.8, -709.8, 745.2, -745.2,
              0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 6.0, 20.0, 37.0, -37.0, 40.0, -40.0]
    with np.errstate(over="ignore"):
        return np.array(values, dtype=dtype)


def sample(dtype, n: int = 20000, seed: int = 0) -> np.ndarray:
    """Random inputs over the whole float range plus the special values."""
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    k = n // 4
    normal = rng.normal(0.0, 4.0, k)
    wide = rng.uniform(-60.0, 60.0, k)
    lo, hi = np.log2(float(info.smallest_subnormal)), np.log2(float(info.max))
    magnitudes = np.exp2(rng.uniform(lo, hi, n - 2 * k)) * rng.choice([-1.0, 1.0], n - 2 * k)
    with np.errstate(over="ignore"):
        x = np.concatenate([normal, wide, magnitudes]).astype(dtype)
    return np.concatenate([special_values(dtype), x[np.isfinite(x)]])


def rounded_params(act: Activation, params: dict, dtype) -> dict:
    """Parameters as the kernels see them: rounded to the array dtype."""
    return {k: (float(dtype(v)) if not isinstance(v, str) else v) for k, v in params.items()}


def _wide(a: np.ndarray) -> np.ndarray:
    return a.astype(ref.evaluation_dtype(a.dtype))


ELEMENTWISE_FORMS = ("forward", "derivative", "backward", "backward_y")
AXIS_FORMS = ("forward", "backward_y")


def forms(act: Activation, params: dict, dtype) -> tuple:
    """The forms of `act` there are kernels for with these parameters: backward_y
    only where the registry allows backward from y (for the rounded parameters)."""
    if act.kind == "axis":
        return AXIS_FORMS
    exact_params = rounded_params(act, params, dtype)
    y_ok = act.backward_y and (act.y_rule is None or act.y_rule(exact_params) is None)
    return ELEMENTWISE_FORMS if y_ok else ELEMENTWISE_FORMS[:3]


def form_errors(act: Activation, form: str, x: np.ndarray, params: dict,
                grad: Optional[np.ndarray] = None) -> np.ndarray:
    """ULP errors, element by element, of one form of an elementwise function.

    x is an array of the kernel dtype; grad (the backward forms; default ones) one
    of the same shape and dtype.  forward and derivative are compared with the
    reference of f and f' at x; backward with grad * f'(x); backward_y with
    grad * f'(y) at y = pyact's own f(x), from the reference's formula in y.
    The exact side is evaluated one step wider and rounded once by ulp_error.
    """
    dtype = x.dtype.type
    exact_params = rounded_params(act, params, dtype)
    name = act.name
    if form == "forward":
        return ref.ulp_error(PUBLIC[name](x, **params),
                             act.reference(_wide(x), **exact_params), dtype)
    if form == "derivative":
        return ref.ulp_error(PUBLIC[name + "_derivative"](x, **params),
                             act.reference_derivative(_wide(x), **exact_params), dtype)
    if grad is None:
        grad = np.ones_like(x)
    if form == "backward":
        got = PUBLIC[name + "_backward"](grad, x=x, **params)
        exact = act.reference_derivative(_wide(x), **exact_params)
    elif form == "backward_y":
        y = PUBLIC[name](x, **params)
        got = PUBLIC[name + "_backward"](grad, y=y, **params)
        exact = act.reference_derivative_y(_wide(y), **exact_params)
    else:
        raise ValueError(f"unknown form {form!r}")
    with np.errstate(all="ignore"):  # inf * 0 is NaN on both sides
        exact = _wide(grad) * exact
    return ref.ulp_error(got, exact, dtype)


def elementwise_errors(act: Activation, dtype, x: np.ndarray, params: dict) -> dict:
    """Max ULP error of forward, derivative and (if any) backward from y."""
    return {form: float(np.max(e)) if e.size else 0.0
            for form in forms(act, params, dtype) if form != "backward"
            for e in [form_errors(act, form, x, params)]}


def axis_form_errors(act: Activation, form: str, x: np.ndarray, axis: int = -1,
                     grad: np.ndarray = None, per: str = "element") -> np.ndarray:
    """Errors, element by element, of one form of an axis function on x.

    forward: ULPs of each result against the reference.  backward_y: the
    vector-Jacobian product from y = pyact's own f(x) with `grad`, in ULPs of
    each element (per="element") or of the largest |exact| in the element's
    slice along `axis` (per="slice", the yardstick of tests/test_axis_api.py:
    g - sum(g y) can cancel to far below its terms, where no evaluation of the
    formula keeps a relative error; see the docstring of pyact.reference).
    """
    dtype = x.dtype.type
    y = PUBLIC[act.name](x, axis=axis)
    if form == "forward":
        return ref.ulp_error(y, act.reference(_wide(x), axis=axis), dtype)
    if form != "backward_y":
        raise ValueError(f"unknown form {form!r}")
    got = PUBLIC[act.name + "_backward"](grad, y=y, axis=axis)
    exact = act.reference_derivative(_wide(grad), _wide(y), axis=axis)
    if per == "element":
        return ref.ulp_error(got, exact, dtype)
    return slice_ulp_error(got, exact, dtype, axis)


def slice_ulp_error(got, exact, dtype, axis: int) -> np.ndarray:
    """|got - exact| in ULPs of the largest finite |exact| in each slice along
    `axis` (or in ULPs of the element itself, when that is smaller: equal
    infinities, NaN against NaN and results that overflow are judged as by
    reference.ulp_error)."""
    dtype = np.dtype(dtype).type
    info = np.finfo(dtype)
    with np.errstate(all="ignore"):
        finite = np.where(np.isfinite(exact), np.abs(exact), 0)
        scale = np.minimum(np.max(finite, axis=axis, keepdims=True), info.max)
        ulp = np.spacing(scale.astype(dtype)).astype(exact.dtype)
        err = (np.abs(np.asarray(got).astype(exact.dtype) - exact) / ulp).astype(np.float64)
    err = np.where(np.isnan(err), np.inf, err)
    return np.minimum(err, ref.ulp_error(got, exact, dtype))


def axis_errors(act: Activation, dtype, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = (rng.normal(0.0, 5.0, (64, 33))).astype(dtype)
    x[3, 5] = -np.inf
    x[7, :] = -800.0
    x[7, 2] = 0.0
    grad = rng.normal(0.0, 1.0, x.shape).astype(dtype)
    return {form: float(np.max(axis_form_errors(act, form, x, -1, grad)))
            for form in AXIS_FORMS}


def check(n: int = 20000):
    """Yield (name, dtype name, form, max ULP error, bound) for every kernel."""
    for act in ELEMENTWISE:
        choices = act.choice_param.choices if act.choice_param else (None,)
        for choice in choices:
            params = act.example_params()
            label = act.name
            if choice is not None:
                params[act.choice_param.name] = choice
                label = f"{act.name}({act.choice_param.name}={choice!r})"
            for dtype in DTYPES:
                for form, err in elementwise_errors(act, dtype, sample(dtype, n), params).items():
                    yield label, np.dtype(dtype).name, form, err, act.ulp_bound(form)
    for act in AXIS:
        for dtype in DTYPES:
            for form, err in axis_errors(act, dtype).items():
                yield act.name, np.dtype(dtype).name, form, err, act.ulp_bound(form)
