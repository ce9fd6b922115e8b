"""The NumPy expressions pyact is measured against: for each activation, the
best plain NumPy (or SciPy, when installed) code a user would write, evaluated
in the array's own precision.  Used by `python -m pyact bench` and the asv
suite; they are not references for accuracy (see pyact.reference for that).

For every registry entry NAME there are

* ``NAME(x, **params)``: the forward expression;
* ``NAME_derivative(x, **params)``: f'(x) (elementwise entries);
* ``NAME_backward(grad, x, **params)``: grad * f'(x) as a user would write it
  (axis entries: ``NAME_backward(grad, y, axis=-1)``, the vector-Jacobian product);
* ``NAME_backward_y(grad, y, **params)``: the same from the saved output, for the
  entries whose registry says backward from y is possible.

Every function returns an array of the input's dtype, or None when it needs
SciPy and SciPy is missing.  :func:`candidates` turns these (plus a few
alternative spellings: ``1/(1+np.exp(-x))`` beside ``expit``, ufuncs with
``out=``, in-place ufuncs, the max-subtract/exp/sum softmax recipe) into the
list of implementations `python -m pyact bench` times, keeping the fastest.
"""
import math

import numpy as np

try:
    from scipy import special as _special
except ImportError:  # SciPy is optional: the baselines that need it are then absent
    _special = None

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def sigmoid(x):
    if _special is not None:
        return _special.expit(x)
    return 1 / (1 + np.exp(-x))


def log_sigmoid(x):
    return -np.logaddexp(0, -x)


def tanh(x):
    return np.tanh(x)


def relu(x):
    return np.maximum(x, 0)


def relu6(x):
    return np.clip(x, 0, 6)


def leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, x, x * negative_slope)


def elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def selu(x):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))


def celu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0) / alpha))


def gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if _special is None:
        return None
    return 0.5 * x * _special.erfc(-x / math.sqrt(2))


def silu(x):
    return x * sigmoid(x)


def mish(x):
    return x * np.tanh(np.logaddexp(0, x))


def softplus(x, beta=1.0, threshold=20.0):
    bx = beta * x
    return np.where(bx > threshold, x, np.logaddexp(0, bx) / beta)


def softsign(x):
    return x / (1 + np.abs(x))


def hardsigmoid(x):
    return np.clip(x + 3, 0, 6) / 6


def hardswish(x):
    return x * np.clip(x + 3, 0, 6) / 6


def hardtanh(x, min_val=-1.0, max_val=1.0):
    return np.clip(x, min_val, max_val)


def hardshrink(x, lambd=0.5):
    return np.where(np.abs(x) > lambd, x, 0)


def softshrink(x, lambd=0.5):
    return np.sign(x) * np.maximum(np.abs(x) - lambd, 0)


def tanhshrink(x):
    return x - np.tanh(x)


def threshold(x, threshold, value):
    return np.where(x > threshold, x, value)


def softmax(x, axis=-1):
    if _special is not None:
        return _special.softmax(x, axis=axis)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    if _special is not None:
        return _special.log_softmax(x, axis=axis)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmin(x, axis=-1):
    return softmax(-x, axis=axis)


# ---- derivatives and backward passes ----------------------------------------------
#
# Written the way a NumPy user would: the derivative formula, then grad * f'.
# Masks multiply as bool arrays and constants are Python scalars, so float32
# stays float32 (NumPy 2 promotion rules).

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_GELU_C = math.sqrt(2 / math.pi)


def _expit(x):
    return _special.expit(x) if _special is not None else 1 / (1 + np.exp(-x))


def sigmoid_derivative(x):
    s = _expit(x)
    return s * (1 - s)


def sigmoid_backward(grad, x):
    s = _expit(x)
    return grad * s * (1 - s)


def sigmoid_backward_y(grad, y):
    return grad * y * (1 - y)


def log_sigmoid_derivative(x):
    return _expit(-x)


def log_sigmoid_backward(grad, x):
    return grad * _expit(-x)


def log_sigmoid_backward_y(grad, y):
    return grad * -np.expm1(y)


def tanh_derivative(x):
    t = np.tanh(x)
    return 1 - t * t


def tanh_backward(grad, x):
    t = np.tanh(x)
    return grad * (1 - t * t)


def tanh_backward_y(grad, y):
    return grad * (1 - y * y)


def relu_derivative(x):
    return (x > 0).astype(x.dtype)


def relu_backward(grad, x):
    return np.where(x > 0, grad, 0)


relu_backward_y = relu_backward


def relu6_derivative(x):
    return ((x > 0) & (x < 6)).astype(x.dtype)


def relu6_backward(grad, x):
    return np.where((x > 0) & (x < 6), grad, 0)


relu6_backward_y = relu6_backward


def leaky_relu_derivative(x, negative_slope=0.01):
    return np.where(x > 0, x.dtype.type(1), x.dtype.type(negative_slope))


def leaky_relu_backward(grad, x, negative_slope=0.01):
    return np.where(x > 0, grad, grad * negative_slope)


leaky_relu_backward_y = leaky_relu_backward


def elu_derivative(x, alpha=1.0):
    return np.where(x > 0, x.dtype.type(1), alpha * np.exp(np.minimum(x, 0)))


def elu_backward(grad, x, alpha=1.0):
    return np.where(x > 0, grad, grad * alpha * np.exp(np.minimum(x, 0)))


def elu_backward_y(grad, y, alpha=1.0):
    return np.where(y > 0, grad, grad * (y + alpha))


def selu_derivative(x):
    return np.where(x > 0, x.dtype.type(SELU_SCALE),
                    SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(x, 0)))


def selu_backward(grad, x):
    return grad * selu_derivative(x)


def selu_backward_y(grad, y):
    return grad * np.where(y > 0, y.dtype.type(SELU_SCALE), y + SELU_SCALE * SELU_ALPHA)


def celu_derivative(x, alpha=1.0):
    return np.where(x > 0, x.dtype.type(1), np.exp(np.minimum(x, 0) / alpha))


def celu_backward(grad, x, alpha=1.0):
    return np.where(x > 0, grad, grad * np.exp(np.minimum(x, 0) / alpha))


def celu_backward_y(grad, y, alpha=1.0):
    return np.where(y > 0, grad, grad * (y / alpha + 1))


def gelu_derivative(x, approximate="none"):
    if approximate == "tanh":
        x2 = x * x
        t = np.tanh(_GELU_C * x * (1 + 0.044715 * x2))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_C * (1 + 3 * 0.044715 * x2)
    if _special is None:
        return None
    return 0.5 * _special.erfc(-_SQRT_HALF * x) + x * (_INV_SQRT_2PI * np.exp(-0.5 * x * x))


def gelu_backward(grad, x, approximate="none"):
    d = gelu_derivative(x, approximate)
    return None if d is None else grad * d


def silu_derivative(x):
    s = _expit(x)
    return s * (1 + x * (1 - s))


def silu_backward(grad, x):
    return grad * silu_derivative(x)


def mish_derivative(x):
    t = np.tanh(np.logaddexp(0, x))
    return t + x * _expit(x) * (1 - t * t)


def mish_backward(grad, x):
    return grad * mish_derivative(x)


def softplus_derivative(x, beta=1.0, threshold=20.0):
    bx = beta * x
    return np.where(bx > threshold, x.dtype.type(1), _expit(bx))


def softplus_backward(grad, x, beta=1.0, threshold=20.0):
    bx = beta * x
    return np.where(bx > threshold, grad, grad * _expit(bx))


def softplus_backward_y(grad, y, beta=1.0, threshold=20.0):
    return grad * -np.expm1(-beta * y)


def softsign_derivative(x):
    d = 1 + np.abs(x)
    return 1 / (d * d)


def softsign_backward(grad, x):
    d = 1 + np.abs(x)
    return grad / (d * d)


def softsign_backward_y(grad, y):
    d = 1 - np.abs(y)
    return grad * (d * d)


def hardsigmoid_derivative(x):
    return ((x > -3) & (x < 3)) * x.dtype.type(1 / 6)


def hardsigmoid_backward(grad, x):
    return np.where((x > -3) & (x < 3), grad / 6, 0)


def hardsigmoid_backward_y(grad, y):
    return np.where((y > 0) & (y < 1), grad / 6, 0)


def hardswish_derivative(x):
    return np.where(x < -3, x.dtype.type(0), np.where(x <= 3, x / 3 + 0.5, x.dtype.type(1)))


def hardswish_backward(grad, x):
    return grad * hardswish_derivative(x)


def hardtanh_derivative(x, min_val=-1.0, max_val=1.0):
    return ((x > min_val) & (x < max_val)).astype(x.dtype)


def hardtanh_backward(grad, x, min_val=-1.0, max_val=1.0):
    return np.where((x > min_val) & (x < max_val), grad, 0)


hardtanh_backward_y = hardtanh_backward


def hardshrink_derivative(x, lambd=0.5):
    return (np.abs(x) > lambd).astype(x.dtype)


def hardshrink_backward(grad, x, lambd=0.5):
    return np.where(np.abs(x) > lambd, grad, 0)


def hardshrink_backward_y(grad, y, lambd=0.5):
    return np.where(y != 0, grad, 0)


softshrink_derivative = hardshrink_derivative
softshrink_backward = hardshrink_backward
softshrink_backward_y = hardshrink_backward_y


def tanhshrink_derivative(x):
    t = np.tanh(x)
    return t * t


def tanhshrink_backward(grad, x):
    t = np.tanh(x)
    return grad * (t * t)


def threshold_derivative(x, threshold, value):
    return (x > threshold).astype(x.dtype)


def threshold_backward(grad, x, threshold, value):
    return np.where(x > threshold, grad, 0)


threshold_backward_y = threshold_backward


def softmax_backward(grad, y, axis=-1):
    return y * (grad - (grad * y).sum(axis=axis, keepdims=True))


def log_softmax_backward(grad, y, axis=-1):
    return grad - np.exp(y) * grad.sum(axis=axis, keepdims=True)


def softmin_backward(grad, y, axis=-1):
    return -y * (grad - (grad * y).sum(axis=axis, keepdims=True))


# ---- the implementations the benchmark times --------------------------------------

FORMS = ("forward", "inplace", "derivative", "backward", "backward_y")


def _softmax_recipe(x, axis, out, negate=False):
    """max-subtract, exp, sum, divide: four passes, all but the first in `out`."""
    if negate:
        np.negative(x, out=out)
        np.subtract(out, out.max(axis=axis, keepdims=True), out=out)
    else:
        np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=axis, keepdims=True)
    return out


def _log_softmax_recipe(x, axis, out):
    np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    out -= np.log(np.exp(out).sum(axis=axis, keepdims=True))
    return out


def _ufunc_out(name, x, out, params):
    """f(x) written into out by one ufunc call, for the functions that are one ufunc."""
    if name == "sigmoid" and _special is not None:
        return _special.expit(x, out=out)
    if name == "tanh":
        return np.tanh(x, out=out)
    if name == "relu":
        return np.maximum(x, 0, out=out)
    if name == "relu6":
        return np.clip(x, 0, 6, out=out)
    if name == "hardtanh":
        return np.clip(x, params["min_val"], params["max_val"], out=out)
    return NotImplemented


def _gelu_cube(x, approximate="none"):
    if approximate != "tanh":
        return gelu(x, approximate)
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * (x * x * x))))


def _times(grad, d):
    return None if d is None else grad * d


_ONE_UFUNC = ("sigmoid", "tanh", "relu", "relu6", "hardtanh")


def candidates(name, form):
    """[(label, callable)] of the NumPy/SciPy implementations of one form of one
    registry entry, for the benchmark (which keeps the fastest per case).

    Call signatures (params are the activation's keyword parameters; axis
    entries take ``axis`` as their only parameter):

    * forward:    f(x, out, **params) -> result (out may be ignored)
    * inplace:    f(x, **params), overwriting x
    * derivative: f(x, out, **params) -> result
    * backward:   f(grad, x, out, **params) -> result (axis entries: f(grad, y, out, axis))
    * backward_y: f(grad, y, out, **params) -> result

    An empty list means the form does not exist for the entry, or needs SciPy.
    """
    g = globals()
    fwd = g[name]
    axis_entry = name in ("softmax", "log_softmax", "softmin")
    found = []
    if form == "forward":
        found.append((f"{name}(x)", lambda x, out, **p: fwd(x, **p)))
        if name in _ONE_UFUNC and (name != "sigmoid" or _special is not None):
            found.append(("ufunc(x, out=buf)", lambda x, out, **p: _ufunc_out(name, x, out, p)))
        if name == "sigmoid":
            found.append(("1/(1+np.exp(-x))", lambda x, out, **p: 1 / (1 + np.exp(-x))))
        if name == "gelu":
            found.append(("gelu, x*x*x for x**3", lambda x, out, **p: _gelu_cube(x, **p)))
        if name in ("softmax", "softmin"):
            found.append(("max/exp/sum recipe, out=buf",
                          lambda x, out, axis=-1: _softmax_recipe(x, axis, out, name == "softmin")))
        if name == "log_softmax":
            found.append(("max/exp/sum/log recipe, out=buf",
                          lambda x, out, axis=-1: _log_softmax_recipe(x, axis, out)))
    elif form == "inplace":
        found.append((f"x[...] = {name}(x)", lambda x, **p: np.copyto(x, fwd(x, **p))))
        if name in _ONE_UFUNC and (name != "sigmoid" or _special is not None):
            found.append(("ufunc(x, out=x)", lambda x, **p: _ufunc_out(name, x, x, p)))
        if name in ("softmax", "softmin"):
            found.append(("max/exp/sum recipe in place",
                          lambda x, axis=-1: _softmax_recipe(x, axis, x, name == "softmin")))
        if name == "log_softmax":
            found.append(("max/exp/sum/log recipe in place",
                          lambda x, axis=-1: _log_softmax_recipe(x, axis, x)))
    elif form == "derivative" and not axis_entry:
        d = g[name + "_derivative"]
        found.append((f"{name}_derivative(x)", lambda x, out, **p: d(x, **p)))
    elif form == "backward":
        b = g[name + "_backward"]
        if axis_entry:
            found.append((f"{name}_backward(grad, y)", lambda grad, y, out, axis=-1: b(grad, y, axis)))
        else:
            found.append((f"{name}_backward(grad, x)", lambda grad, x, out, **p: b(grad, x, **p)))
            d = g[name + "_derivative"]
            found.append((f"grad * {name}_derivative(x)",
                          lambda grad, x, out, **p: _times(grad, d(x, **p))))
    elif form == "backward_y" and not axis_entry and name + "_backward_y" in g:
        b = g[name + "_backward_y"]
        found.append((f"{name}_backward_y(grad, y)", lambda grad, y, out, **p: b(grad, y, **p)))
    return found
