"""Accuracy check of every kernel against the pure-NumPy reference.

Used by `python -m pyact` (a quick pass) and the test suite: errors are in
ULPs of the result dtype, against pyact.reference evaluated one step wider
(float64 for float32 results, long double for float64 results).
"""
from __future__ import annotations

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


def elementwise_errors(act: Activation, dtype, x: np.ndarray, params: dict) -> dict:
    """Max ULP error of forward, derivative and (if any) backward from y."""
    exact_params = rounded_params(act, params, dtype)
    name = act.name
    y = PUBLIC[name](x, **params)
    errors = {
        "forward": ref.ulp_error(y, act.reference(_wide(x), **exact_params), dtype),
        "derivative": ref.ulp_error(PUBLIC[name + "_derivative"](x, **params),
                                    act.reference_derivative(_wide(x), **exact_params), dtype),
    }
    if act.backward_y and (act.y_rule is None or act.y_rule(exact_params) is None):
        ones = np.ones_like(y)
        errors["backward_y"] = ref.ulp_error(
            PUBLIC[name + "_backward"](ones, y=y, **params),
            act.reference_derivative_y(_wide(y), **exact_params), dtype)
    return {form: float(np.max(e)) if e.size else 0.0 for form, e in errors.items()}


def axis_errors(act: Activation, dtype, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = (rng.normal(0.0, 5.0, (64, 33))).astype(dtype)
    x[3, 5] = -np.inf
    x[7, :] = -800.0
    x[7, 2] = 0.0
    grad = rng.normal(0.0, 1.0, x.shape).astype(dtype)
    y = PUBLIC[act.name](x, axis=-1)
    return {
        "forward": float(np.max(ref.ulp_error(y, act.reference(_wide(x), axis=-1), dtype))),
        "backward_y": float(np.max(ref.ulp_error(
            PUBLIC[act.name + "_backward"](grad, y=y, axis=-1),
            act.reference_derivative(_wide(grad), _wide(y), axis=-1), dtype))),
    }


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
