"""The compiled fast paths (pyact._kernels.api_*) against the Python
implementation they stand in for: same results bit for bit, same errors."""
import numpy as np
import pytest

import pyact
from pyact import _api
from pyact._registry import AXIS, ELEMENTWISE

SLOW = _api._build()  # the Python implementations, without fast paths
CASES = [(act, params) for act in ELEMENTWISE for params in
         ([act.example_params()] + ([{**act.example_params(), act.choice_param.name: c}
                                     for c in act.choice_param.choices]
                                    if act.choice_param else []))]
IDS = [f"{a.name}-{'-'.join(str(v) for v in p.values())}" for a, p in CASES]


def _same(a, b):
    assert type(a) is type(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act,params", CASES, ids=IDS)
def test_fast_equals_slow(act, params, dtype):
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 4, (3, 33))).astype(dtype)
    x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    grad = rng.normal(0, 1, x.shape).astype(dtype)
    n = act.name
    _same(pyact.__dict__[n](x, **params), SLOW[n](x, **params))
    _same(pyact.__dict__[n + "_derivative"](x, **params), SLOW[n + "_derivative"](x, **params))
    _same(pyact.__dict__[n + "_backward"](grad, x=x, **params),
          SLOW[n + "_backward"](grad, x=x, **params))
    if act.backward_y:
        y = SLOW[n](x, **params)
        _same(pyact.__dict__[n + "_backward"](grad, y=y, **params),
              SLOW[n + "_backward"](grad, y=y, **params))
    a, b = x.copy(), x.copy()
    assert pyact.__dict__[n + "_"](a, **params) is a
    SLOW[n + "_"](b, **params)
    _same(a, b)
    # out= the input, and out= grad in place
    o = x.copy()
    assert pyact.__dict__[n](o, out=o, **params) is o
    _same(o, SLOW[n](x, **params))
    g = grad.copy()
    assert pyact.__dict__[n + "_backward"](g, x=x, out=g, **params) is g
    _same(g, SLOW[n + "_backward"](grad, x=x, **params))


@pytest.mark.parametrize("act,params", [c for c in CASES if c[0].real_params],
                         ids=[i for c, i in zip(CASES, IDS) if c[0].real_params])
def test_parameter_types_take_the_same_path_result(act, params):
    # ints and NumPy floats go through the Python path; results must not differ
    x = np.linspace(-5, 5, 101)
    p = act.real_params[0].name
    for value in (int(round(params[p])) or 1, np.float64(params[p]), np.float32(params[p])):
        other = {**params, p: value}
        try:
            expected = SLOW[act.name](x, **other)
        except ValueError as exc:
            with pytest.raises(ValueError, match=str(exc)[:20].replace("(", r"\(")):
                pyact.__dict__[act.name](x, **other)
            continue
        _same(pyact.__dict__[act.name](x, **other), expected)


def test_rules_are_enforced_on_the_fast_path():
    x = np.ones(4)
    with pytest.raises(ValueError, match="min_val"):
        pyact.hardtanh(x, min_val=2.0, max_val=1.0)
    with pytest.raises(ValueError, match="alpha"):
        pyact.celu(x, alpha=0.0)
    with pytest.raises(ValueError, match="finite"):
        pyact.elu(x, alpha=float("nan"))
    with pytest.raises(ValueError, match="approximate"):
        pyact.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="negative_slope"):
        pyact.leaky_relu_backward(x, y=x, negative_slope=-0.5)
    # but a negative slope is fine from x
    assert pyact.leaky_relu_backward(x, x=-x, negative_slope=-0.5)[0] == -0.5
    with pytest.raises(TypeError, match="threshold"):
        pyact.threshold(x, value=0.0)
    with pytest.raises(TypeError):
        pyact.relu(x, negative_slope=0.1)


def test_overlap_and_foreign_out_fall_back_correctly():
    buf = np.linspace(-3, 3, 20)
    expected = SLOW["sigmoid"](buf[:-1])
    pyact.sigmoid(buf[:-1], out=buf[1:])  # partial overlap: must read a copy
    assert np.array_equal(buf[1:], expected)
    g = np.linspace(-1, 1, 20)
    x = np.linspace(-2, 2, 20)
    out = np.empty(20, np.float32)  # wrong dtype: TypeError, nothing written
    out[:] = 7
    with pytest.raises(TypeError):
        pyact.tanh_backward(g, x=x, out=out)
    assert (out == 7).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", AXIS, ids=[a.name for a in AXIS])
def test_axis_fast_equals_slow(act, dtype):
    rng = np.random.default_rng(2)
    x = rng.normal(0, 4, (3, 5, 7)).astype(dtype)
    x[0, 0, :2] = -np.inf
    grad = rng.normal(0, 1, x.shape).astype(dtype)
    n = act.name
    for axis in (-3, -2, -1, 0, 1, 2):
        y = SLOW[n](x, axis=axis)
        _same(pyact.__dict__[n](x, axis=axis), y)
        _same(pyact.__dict__[n + "_backward"](grad, y=y, axis=axis),
              SLOW[n + "_backward"](grad, y=y, axis=axis))
        a = x.copy()
        assert pyact.__dict__[n + "_"](a, axis=axis) is a
        _same(a, y)
        g = grad.copy()
        assert pyact.__dict__[n + "_backward"](g, y=y, axis=axis, out=g) is g
        _same(g, SLOW[n + "_backward"](grad, y=y, axis=axis))
    from numpy.exceptions import AxisError
    for bad in (3, -4, 10**30):
        with pytest.raises(AxisError):
            pyact.__dict__[n](x, axis=bad)
    with pytest.raises(TypeError):
        pyact.__dict__[n](x, axis=1.0)
    with pytest.raises(TypeError):
        pyact.__dict__[n + "_backward"](grad)
