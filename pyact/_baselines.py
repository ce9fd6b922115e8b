"""The NumPy expressions pyact is measured against: for each activation, the
best plain NumPy (or SciPy, when installed) code a user would write, evaluated
in the array's own precision.  Used by `python -m pyact bench` and the asv
suite; they are not references for accuracy (see pyact.reference for that)."""
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
