"""The public functions, built from the registry over the compiled kernels.

For every elementwise activation NAME this makes NAME, NAME_, NAME_derivative
and NAME_backward; for every axis function NAME, NAME, NAME_ and
NAME_backward.  All argument checking happens here, before anything is
written; the kernels (pyact._dispatch.kernels, the module of the ISA level in
use) only ever see contiguous, aligned, native-endian float32/float64 buffers.
"""
from __future__ import annotations

import inspect
import operator

import numpy as np

from ._dispatch import kernels as _kernels
from ._registry import AXIS, ELEMENTWISE, Activation, validate_params

try:
    from numpy.exceptions import AxisError as _AxisError
except ImportError:  # pragma: no cover - NumPy < 1.25
    from numpy import AxisError as _AxisError

try:  # NumPy >= 2.0
    from numpy.lib.array_utils import normalize_axis_index
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import normalize_axis_index

__all__ = ["PUBLIC"]

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_FLOAT16 = np.dtype(np.float16)
_SUPPORTED = ("float32 or float64 (float16, bool and integer input is accepted "
              "out of place: float16 is computed in float32, the others in float64)")


# ---- argument conversion ---------------------------------------------------------

def _compute_dtype(dtype: np.dtype, fname: str, argname: str) -> np.dtype:
    """The kernel dtype for an input dtype, or TypeError."""
    if dtype.kind == "f":
        if dtype.itemsize == 4:
            return _FLOAT32
        if dtype.itemsize == 8:
            return _FLOAT64
        if dtype.itemsize == 2:
            return _FLOAT32
    elif dtype.kind in "biu":
        return _FLOAT64
    raise TypeError(f"{fname}(): {argname} has unsupported dtype {dtype}; expected {_SUPPORTED}")


def _as_array(value, fname: str, argname: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if value is None:
        raise TypeError(f"{fname}(): {argname} must be an array of real numbers, got None")
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{fname}(): {argname} must be an array of real numbers: {exc}") from None


def _result_dtype(arrays, fname: str, names) -> tuple[np.dtype, np.dtype]:
    """(kernel dtype, result dtype) for the inputs, NumPy-style promotion."""
    compute = [_compute_dtype(a.dtype, fname, n) for a, n in zip(arrays, names)]
    compute_dtype = _FLOAT64 if _FLOAT64 in compute else _FLOAT32
    if all(a.dtype.kind == "f" and a.dtype.itemsize == 2 for a in arrays):
        return _FLOAT32, _FLOAT16
    return compute_dtype, compute_dtype


def _check_out(out, shape, dtype: np.dtype, fname: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fname}(): out must be a NumPy array, got {type(out).__name__}")
    if out.dtype.newbyteorder("=") != dtype:
        raise TypeError(f"{fname}(): out has dtype {out.dtype}, expected {dtype}")
    if out.shape != shape:
        raise ValueError(f"{fname}(): out has shape {out.shape}, expected {shape}")
    if not out.flags.writeable:
        raise ValueError(f"{fname}(): out is read-only")
    return out


def _check_in_place(x, fname: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fname}(): in-place functions need a NumPy array, got "
                        f"{type(x).__name__}; use the out-of-place form for array-likes")
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(f"{fname}(): in place needs a float32 or float64 array, got {x.dtype}")
    if not x.flags.writeable:
        raise ValueError(f"{fname}(): x is read-only")
    return x


def _same_shape(arrays, names, fname: str):
    shape = arrays[0].shape
    for a, n in zip(arrays[1:], names[1:]):
        if a.shape != shape:
            raise ValueError(f"{fname}(): {names[0]} has shape {shape} but {n} has "
                             f"shape {a.shape}; they must be equal")
    return shape


def _finish(result: np.ndarray, out_given: bool):
    # Like a ufunc: a 0-d result without out= comes back as a NumPy scalar.
    return result[()] if (result.ndim == 0 and not out_given) else result


# ---- running kernels on arbitrary layouts ----------------------------------------

def _is_kernel_ready(a: np.ndarray, dtype: np.dtype, order: str) -> bool:
    flags = a.flags
    contiguous = flags.c_contiguous if order == "C" else flags.f_contiguous
    return contiguous and flags.aligned and a.dtype == dtype


def _data_address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _kernel_copy(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """a as a C-contiguous, aligned, native array of dtype, copied if it is not one.

    (np.ascontiguousarray alone returns an unaligned contiguous array as it is;
    the kernels' float*/double* loads would then be misaligned.)
    """
    c = np.ascontiguousarray(a, dtype=dtype)
    return c if c.flags.aligned else c.copy()


def _apply(kernel, inputs, out: np.ndarray, dtype: np.dtype, params, *, rows: bool = False):
    """Run `kernel(*flat_inputs, flat_out, *params)` so that out = f(inputs).

    inputs and out share one shape; out may be one of the inputs (in place) or
    overlap them in any way.  With rows=True the last axis is kept (2-D rows
    for the axis kernels); otherwise everything is flattened to 1-D.
    """
    if out.size == 0:
        return
    arrays = list(inputs) + [out]
    order = "C" if all(_is_kernel_ready(a, dtype, "C") for a in arrays) else (
        "F" if not rows and all(_is_kernel_ready(a, dtype, "F") for a in arrays) else None)
    if order is None:
        # Strided, byte-swapped, unaligned or mixed layouts: compute on contiguous
        # copies, then write the view (only its elements change).
        flat_in = [_flatten(_kernel_copy(a, dtype), "C", rows) for a in inputs]
        result = np.empty(out.shape, dtype=dtype)
        kernel(*flat_in, _flatten(result, "C", rows), *params)
        np.copyto(out, result, casting="unsafe")
        return
    flat_out = _flatten(out, order, rows)
    flat_in = []
    for a in inputs:
        flat = _flatten(a, order, rows)
        # Reading and writing the same elements in step is safe; any other
        # overlap with out must read from a copy.
        if _data_address(flat) != _data_address(flat_out) and np.may_share_memory(flat, flat_out):
            flat = flat.copy()
        flat_in.append(flat)
    kernel(*flat_in, flat_out, *params)


def _flatten(a: np.ndarray, order: str, rows: bool) -> np.ndarray:
    if rows:
        return a.reshape(-1, a.shape[-1])
    return a.reshape(-1, order=order)


def _run(kernel, inputs, out, compute_dtype, result_dtype, params, *, rows=False):
    """Compute into `out` (already checked), converting dtypes where needed."""
    if result_dtype == compute_dtype:
        _apply(kernel, inputs, out, compute_dtype, params, rows=rows)
        return
    # float16 results: compute in float32 and round once when storing.
    result = np.empty(out.shape, dtype=compute_dtype)
    _apply(kernel, [a.astype(compute_dtype) for a in inputs], result, compute_dtype,
           params, rows=rows)
    with np.errstate(all="ignore"):  # values beyond float16's range become inf, silently
        np.copyto(out, result, casting="unsafe")


# ---- elementwise functions --------------------------------------------------------

def _kernel_params(act: Activation, values: dict) -> tuple:
    return tuple(values[p.name] for p in act.real_params)


def _kernel_for(act: Activation, values: dict, form: str):
    cp = act.choice_param
    family = act.kernel_name(values[cp.name] if cp is not None else None)
    return getattr(_kernels, f"{family}_{form}")


def _elementwise_out_of_place(act: Activation, form: str, public_name: str):
    def function(x, *, out=None, **params):
        values = validate_params(act, params)
        arr = _as_array(x, public_name, "x")
        compute_dtype, result_dtype = _result_dtype([arr], public_name, ["x"])
        if out is None:
            result = np.empty_like(arr, dtype=result_dtype, subok=False)
        else:
            result = _check_out(out, arr.shape, result_dtype, public_name)
        _run(_kernel_for(act, values, form), [arr], result, compute_dtype, result_dtype,
             _kernel_params(act, values))
        return _finish(result, out is not None)
    return function


def _elementwise_in_place(act: Activation, public_name: str):
    def function(x, **params):
        values = validate_params(act, params)
        arr = _check_in_place(x, public_name)
        dtype = _compute_dtype(arr.dtype, public_name, "x")
        _run(_kernel_for(act, values, "forward"), [arr], arr, dtype, dtype,
             _kernel_params(act, values))
        return x
    return function


def _elementwise_backward(act: Activation, public_name: str):
    def function(grad, *, x=None, y=None, out=None, **params):
        if (x is None) == (y is None):
            raise TypeError(f"{public_name}(): pass exactly one of x (the saved input) or "
                            f"y (the saved output){'' if act.backward_y else '; only x is supported'}")
        if y is not None and not act.backward_y:
            raise TypeError(f"{public_name}(): the derivative of {act.name} is not a function "
                            f"of its output, so backward needs x, not y")
        values = validate_params(act, params, for_y=y is not None)
        saved_name = "x" if y is None else "y"
        arrays = [_as_array(grad, public_name, "grad"),
                  _as_array(x if y is None else y, public_name, saved_name)]
        names = ["grad", saved_name]
        shape = _same_shape(arrays, names, public_name)
        compute_dtype, result_dtype = _result_dtype(arrays, public_name, names)
        if out is None:
            result = np.empty_like(arrays[0], dtype=result_dtype, subok=False)
        else:
            result = _check_out(out, shape, result_dtype, public_name)
        form = "backward" if y is None else "backward_y"
        _run(_kernel_for(act, values, form), arrays, result, compute_dtype, result_dtype,
             _kernel_params(act, values))
        return _finish(result, out is not None)
    return function


# ---- axis functions ----------------------------------------------------------------

def _axis_index(axis, ndim: int, fname: str) -> int:
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{fname}(): axis must be an integer, got {type(axis).__name__}") from None
    if not -ndim <= axis < ndim:  # checked here so that huge ints don't overflow in NumPy
        raise _AxisError(axis, ndim)
    return normalize_axis_index(axis, ndim)


def _axis_shape(shape, axis: int) -> tuple:
    """(outer, n, inner): the C-order shape seen as the reduced axis between two others."""
    return (int(np.prod(shape[:axis], dtype=np.intp)), shape[axis],
            int(np.prod(shape[axis + 1:], dtype=np.intp)))


def _axis_apply(kernel, inputs, out: np.ndarray, dtype: np.dtype, axis: int, mode: int):
    """out = kernel(inputs) along `axis`, reading and writing the arrays in place.

    The kernels take C-contiguous (outer, n, inner) buffers and reduce along the
    middle axis, so a C-contiguous array is used as it is, whatever the axis, and
    an F-contiguous one as its (C-contiguous) transpose.  Only an array that is
    neither (strided, negative strides) or not in the kernel's form (byte-swapped,
    unaligned, another dtype) is copied; out is then computed into a temporary
    and written back (only the view's elements change).
    """
    if out.size == 0:
        return
    arrays = list(inputs) + [out]
    if (not all(_is_kernel_ready(a, dtype, "C") for a in arrays)
            and all(_is_kernel_ready(a, dtype, "F") for a in arrays)):
        # F order is C order of the transpose, along the mirrored axis.
        inputs = [a.T for a in inputs]
        out = out.T
        axis = out.ndim - 1 - axis
    shape3 = _axis_shape(out.shape, axis)
    target = out if _is_kernel_ready(out, dtype, "C") else np.empty(out.shape, dtype=dtype)
    flat_out = target.reshape(shape3)
    flat_in = []
    for a in inputs:
        if not _is_kernel_ready(a, dtype, "C"):
            flat = _kernel_copy(a, dtype).reshape(shape3)
        else:
            flat = a.reshape(shape3)
            # Reading and writing the same elements in step is safe; any other
            # overlap with out must read from a copy.
            if (_data_address(flat) != _data_address(flat_out)
                    and np.may_share_memory(flat, flat_out)):
                flat = flat.copy()
        flat_in.append(flat)
    kernel(*flat_in, flat_out, mode)
    if target is not out:
        np.copyto(out, target, casting="unsafe")


def _axis_run(kernel, inputs, out, compute_dtype, result_dtype, axis, mode):
    """Compute into `out` (already checked) along `axis`, converting dtypes where needed."""
    if result_dtype == compute_dtype:
        _axis_apply(kernel, inputs, out, compute_dtype, axis, mode)
        return
    # float16 results: compute in float32 and round once when storing.
    result = np.empty(out.shape, dtype=compute_dtype)
    _axis_apply(kernel, [a.astype(compute_dtype) for a in inputs], result, compute_dtype,
                axis, mode)
    with np.errstate(all="ignore"):  # values beyond float16's range become inf, silently
        np.copyto(out, result, casting="unsafe")


def _axis_forward(act: Activation, public_name: str, in_place: bool):
    mode = _kernels.AXIS_MODES[act.name]

    def compute(x, axis, out):
        if in_place:
            arr = _check_in_place(x, public_name)
            compute_dtype = result_dtype = _compute_dtype(arr.dtype, public_name, "x")
        else:
            arr = _as_array(x, public_name, "x")
            compute_dtype, result_dtype = _result_dtype([arr], public_name, ["x"])
        ax = _axis_index(axis, arr.ndim, public_name)
        if in_place:
            result = arr
        elif out is None:
            result = np.empty_like(arr, dtype=result_dtype, subok=False)
        else:
            result = _check_out(out, arr.shape, result_dtype, public_name)
        _axis_run(_kernels.softmax_rows, [arr], result, compute_dtype, result_dtype, ax, mode)
        return result

    if in_place:
        def function(x, *, axis=-1):
            compute(x, axis, None)
            return x
    else:
        def function(x, *, axis=-1, out=None):
            return _finish(compute(x, axis, out), out is not None)
    return function


def _axis_backward(act: Activation, public_name: str):
    mode = _kernels.AXIS_MODES[act.name]

    def function(grad, *, y, axis=-1, out=None):
        arrays = [_as_array(grad, public_name, "grad"), _as_array(y, public_name, "y")]
        names = ["grad", "y"]
        shape = _same_shape(arrays, names, public_name)
        compute_dtype, result_dtype = _result_dtype(arrays, public_name, names)
        ax = _axis_index(axis, arrays[0].ndim, public_name)
        if out is None:
            result = np.empty_like(arrays[0], dtype=result_dtype, subok=False)
        else:
            result = _check_out(out, shape, result_dtype, public_name)
        _axis_run(_kernels.softmax_backward_rows, arrays, result, compute_dtype,
                  result_dtype, ax, mode)
        return _finish(result, out is not None)
    return function


# ---- signatures and docstrings -----------------------------------------------------

_KW = inspect.Parameter.KEYWORD_ONLY
_POS = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _param_signature(act: Activation):
    return [inspect.Parameter(p.name, _KW, default=inspect.Parameter.empty if p.required
                              else p.default) for p in act.params]


def _param_doc(act: Activation) -> str:
    if not act.params:
        return ""
    lines = ["", "Parameters of the activation (keyword-only):"]
    for p in act.params:
        default = "required" if p.required else f"default {p.default!r}"
        lines.append(f"    {p.name}: {p.doc} ({default})")
    return "\n".join(lines)


def _describe(act: Activation, public_name: str, what: str, call: str, extra: str) -> str:
    text = (f"{act.summary} {what}\n\n"
            f"    {call}\n\n"
            f"f(x) = {act.formula}\nf'(x) = {act.derivative}\n"
            f"{_param_doc(act)}\n{extra}")
    if act.extra_doc:
        text += f"\n{act.extra_doc}\n"
    return text


_LAYOUT = ("x may have any shape and strides; float32 stays float32 and float64 stays "
           "float64.\nout, if given, must have x's shape and the result dtype; it may be x "
           "itself.\n")


def _finalize(func, name: str, params, doc: str):
    func.__name__ = func.__qualname__ = name
    func.__module__ = "pyact"
    func.__doc__ = doc
    func.__signature__ = inspect.Signature(params)
    return func


def _build() -> dict:
    public = {}
    for act in ELEMENTWISE:
        n = act.name
        kw = _param_signature(act)
        x = [inspect.Parameter("x", _POS)]
        out = [inspect.Parameter("out", _KW, default=None)]
        public[n] = _finalize(
            _elementwise_out_of_place(act, "forward", n), n, x + out + kw,
            _describe(act, n, "Returns f(x).", f"{n}(x, *, out=None, **params)", _LAYOUT))
        public[n + "_"] = _finalize(
            _elementwise_in_place(act, n + "_"), n + "_", x + kw,
            _describe(act, n + "_", "Applies f in place and returns x.", f"{n}_(x, **params)",
                      "x must be a writable float32 or float64 NumPy array (any strides).\n"))
        public[n + "_derivative"] = _finalize(
            _elementwise_out_of_place(act, "derivative", n + "_derivative"), n + "_derivative",
            x + out + kw,
            _describe(act, n + "_derivative", "Returns f'(x) elementwise.",
                      f"{n}_derivative(x, *, out=None, **params)", _LAYOUT))
        saved = [inspect.Parameter("x", _KW, default=None), inspect.Parameter("y", _KW, default=None)]
        y_doc = (f"From the saved output y: f'(y) = {act.derivative_y}.\n" if act.backward_y
                 else "Needs the saved input x: f' is not a function of the output.\n")
        public[n + "_backward"] = _finalize(
            _elementwise_backward(act, n + "_backward"), n + "_backward",
            [inspect.Parameter("grad", _POS)] + saved + out + kw,
            _describe(act, n + "_backward", "Returns grad * f'(x) in one fused pass.",
                      f"{n}_backward(grad, *, x=None, y=None, out=None, **params)",
                      "Pass exactly one of x (the saved input) or y (the saved output).\n"
                      + y_doc + "out=grad works in place.\n"))
    for act in AXIS:
        n = act.name
        x = [inspect.Parameter("x", _POS)]
        axis = [inspect.Parameter("axis", _KW, default=-1)]
        out = [inspect.Parameter("out", _KW, default=None)]
        public[n] = _finalize(
            _axis_forward(act, n, in_place=False), n, x + axis + out,
            _describe(act, n, "Returns f(x) along `axis`.", f"{n}(x, *, axis=-1, out=None)",
                      "Entries of -inf get probability 0; a slice holding NaN or +inf, or "
                      "only -inf, is NaN.\n"))
        public[n + "_"] = _finalize(
            _axis_forward(act, n + "_", in_place=True), n + "_", x + axis,
            _describe(act, n + "_", "Applies f along `axis` in place and returns x.",
                      f"{n}_(x, *, axis=-1)", ""))
        public[n + "_backward"] = _finalize(
            _axis_backward(act, n + "_backward"), n + "_backward",
            [inspect.Parameter("grad", _POS), inspect.Parameter("y", _KW)] + axis + out,
            _describe(act, n + "_backward",
                      "Vector-Jacobian product from the saved output y.",
                      f"{n}_backward(grad, *, y, axis=-1, out=None)", "out=grad works in place.\n"))
    return public


def _with_fast_paths(slow: dict) -> dict:
    """Swap in the compiled fast path of every public function that has one.

    The fast path (pyact._kernels.api_NAME) handles the common case and calls
    the Python implementation for everything else; it gets this module's
    docstring and signature so that help() and inspect see no difference.
    """
    _kernels.install_fallbacks(slow)
    public = dict(slow)
    for name, function in slow.items():
        fast = getattr(_kernels, "api_" + name, None)
        if fast is None:
            continue
        fast.__doc__ = function.__doc__
        fast.__signature__ = function.__signature__
        fast.__name__ = fast.__qualname__ = name
        fast.__module__ = "pyact"
        public[name] = fast
    return public


PUBLIC = _with_fast_paths(_build())
