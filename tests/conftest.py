"""Shared fixtures and helpers for the pyact test suite.

Everything here is driven by the registry (pyact._registry.ELEMENTWISE): the
list of (activation, params) cases is generated from it, never hard-coded.
"""
from __future__ import annotations

import numpy as np
import pytest

try:
    import pyact
    from pyact import _check
    from pyact import reference as ref
    from pyact._registry import ELEMENTWISE, Activation
except ImportError:  # extension not built: tests/test_reference.py still runs standalone
    pyact = None
    ELEMENTWISE = ()

DTYPES = (np.float32, np.float64)
DTYPE_IDS = ("float32", "float64")


# ---- the (activation, params) cases -------------------------------------------------

def _example_cases():
    """One case per activation, and per value of its choice parameter (gelu)."""
    cases = []
    for act in ELEMENTWISE:
        cp = act.choice_param
        for choice in (cp.choices if cp is not None else (None,)):
            params = act.example_params()
            label = act.name
            if choice is not None:
                params[cp.name] = choice
                label = f"{act.name}-{cp.name}={choice}"
            cases.append((act, params, label))
    return cases


def _scaled_cases():
    """Non-default real parameters (defaults times 1.3), for activations that have any.

    1.3x is not exactly representable in binary, so these also exercise the
    "parameters are rounded to the array dtype" contract.  Scaling every real
    parameter by the same positive factor keeps every registry rule satisfied
    (nonzero/nonnegative/positive, min_val <= max_val, value <= threshold).
    """
    cases = []
    for act, params, label in _example_cases():
        if not act.real_params:
            continue
        scaled = dict(params)
        for p in act.real_params:
            scaled[p.name] = params[p.name] * 1.3
        assert act.rule is None or act.rule(scaled) is None
        cases.append((act, scaled, label + "-scaled"))
    return cases


EXAMPLE_CASES = _example_cases()
SCALED_CASES = _scaled_cases()
ALL_CASES = EXAMPLE_CASES + SCALED_CASES


def case_params(cases):
    """pytest.param list of (act, params) with readable ids."""
    return [pytest.param(act, params, id=label) for act, params, label in cases]


def act_params():
    """pytest.param list of activations (one per registry entry)."""
    return [pytest.param(act, id=act.name) for act in ELEMENTWISE]


@pytest.fixture(params=DTYPES, ids=DTYPE_IDS)
def dtype(request):
    return np.dtype(request.param).type


# ---- calling pyact by registry name --------------------------------------------------

def fn(act: Activation, suffix: str = ""):
    """The public function pyact.<name><suffix>."""
    return getattr(pyact, act.name + suffix)


def fwd(act: Activation):
    return fn(act)


def fwd_(act: Activation):
    return fn(act, "_")


def bwd(act: Activation):
    return fn(act, "_backward")


def y_allowed(act: Activation, params: dict, dtype=None) -> bool:
    """Whether backward from y is available for these parameters."""
    if not act.backward_y:
        return False
    p = _check.rounded_params(act, params, dtype) if dtype is not None else params
    return act.y_rule is None or act.y_rule(p) is None


def wide(a) -> np.ndarray:
    """a in the evaluation dtype of its own (float32/float64) dtype."""
    a = np.asarray(a)
    return a.astype(ref.evaluation_dtype(a.dtype))


def exact_forward(act, params, x):
    return act.reference(wide(x), **_check.rounded_params(act, params, x.dtype.type))


def exact_derivative(act, params, x):
    return act.reference_derivative(wide(x), **_check.rounded_params(act, params, x.dtype.type))


def exact_backward(act, params, grad, x):
    """grad * f'(x) evaluated in the wide type (the fused result, before rounding)."""
    d = exact_derivative(act, params, x)
    with np.errstate(all="ignore"):  # our own arithmetic; pyact is checked separately
        return wide(grad) * d


def exact_backward_y(act, params, grad, y):
    d = act.reference_derivative_y(wide(y), **_check.rounded_params(act, params, y.dtype.type))
    with np.errstate(all="ignore"):
        return wide(grad) * d


# ---- comparison ------------------------------------------------------------------------

def assert_ulp(result, exact, dtype, bound, x=None, what="", extra=None):
    """Assert |result - exact| <= bound ULPs of dtype everywhere (NaN == NaN).

    On failure the message names the worst element: its input (x, and any
    `extra` arrays such as grad), the result and the exact value.
    """
    result = np.asarray(result)
    exact = np.asarray(exact)
    assert result.shape == exact.shape, (what, result.shape, exact.shape)
    if result.size == 0:
        return
    err = ref.ulp_error(result, exact, dtype)
    worst = float(np.max(err))
    if not worst <= bound:
        i = np.unravel_index(int(np.argmax(err)), err.shape)
        nbad = int(np.count_nonzero(~(err <= bound)))
        parts = [f"{what}: max error {worst!r} ULP > bound {bound} ({nbad} of {err.size} elements)",
                 f"worst at index {i}:"]
        if x is not None:
            parts.append(f"  x      = {np.asarray(x)[i]!r}")
        for name, arr in (extra or {}).items():
            parts.append(f"  {name:6} = {np.asarray(arr)[i]!r}")
        parts.append(f"  got    = {result[i]!r}")
        parts.append(f"  exact  = {exact[i]!r}")
        raise AssertionError("\n".join(parts))


def assert_bitwise_equal(a, b, what=""):
    """Same dtype, shape and bits (so NaN == NaN and -0.0 != 0.0)."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.dtype == b.dtype, (what, a.dtype, b.dtype)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    view = {2: np.uint16, 4: np.uint32, 8: np.uint64}.get(a.dtype.itemsize)
    if view is None or a.dtype.kind not in "f":
        assert a.tobytes() == b.tobytes(), (what, a, b)
        return
    ab = np.ascontiguousarray(a).view(view)
    bb = np.ascontiguousarray(b).view(view)
    if not np.array_equal(ab, bb):
        i = np.unravel_index(int(np.argmax(ab != bb)), ab.shape) if a.ndim else ()
        raise AssertionError(f"{what}: not bitwise equal at {i}: {a[i]!r} vs {b[i]!r}")


def check_all_forms(act, params, x, grad, label=""):
    """forward, derivative, backward from x and (if allowed) from y vs the reference."""
    dt = x.dtype.type
    bound = act.ulp_bound("forward")
    dbound = act.ulp_bound("derivative")
    y = fn(act)(x, **params)
    assert np.asarray(y).dtype == x.dtype
    assert_ulp(y, exact_forward(act, params, x), dt, bound, x, f"{label} forward")
    d = fn(act, "_derivative")(x, **params)
    assert np.asarray(d).dtype == x.dtype
    assert_ulp(d, exact_derivative(act, params, x), dt, dbound, x, f"{label} derivative")
    b = fn(act, "_backward")(grad, x=x, **params)
    assert np.asarray(b).dtype == x.dtype
    assert_ulp(b, exact_backward(act, params, grad, x), dt, dbound, x,
               f"{label} backward(x)", {"grad": grad})
    if y_allowed(act, params, dt):
        y = np.asarray(y)
        by = fn(act, "_backward")(grad, y=y, **params)
        assert np.asarray(by).dtype == x.dtype
        assert_ulp(by, exact_backward_y(act, params, grad, y), dt, dbound, x,
                   f"{label} backward(y)", {"grad": grad, "y": y})
