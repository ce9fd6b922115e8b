"""Hardening: unusual inputs, memory, reference counts and Python threads.

Every public function of the registry is driven through inputs a careful user
might still pass (memmaps, subclasses, byte-swapped and high-dimensional
views, huge arrays) and through its error paths many times over, checking
results against the Python path and that nothing leaks.
"""
import gc
import os
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import pyact
from pyact import _api, _dispatch
from pyact._registry import AXIS, ELEMENTWISE

SLOW = _api._build()  # the Python implementations (no compiled fast paths)
NAMES = [a.name for a in ELEMENTWISE]


def _reference_result(name, x, **kw):
    """The same call on a plain C-contiguous float copy through the Python path."""
    return SLOW[name](np.array(x, dtype=np.result_type(x, np.float32), order="C"), **kw)


@pytest.mark.parametrize("ndim", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("name", ["sigmoid", "gelu", "hardtanh", "softplus"])
def test_views_in_one_to_five_dimensions(name, ndim):
    rng = np.random.default_rng(ndim)
    base = rng.normal(0, 3, (5,) * ndim).astype(np.float32)
    views = [base, base[::-1], base[..., ::2], base.T, base[(slice(None, None, -2),) * ndim]]
    for v in views:
        expected = _reference_result(name, v)
        got = getattr(pyact, name)(v)
        assert got.shape == v.shape and got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
        # in place on the same view of a copy: only the view's elements change
        work = base.copy()
        in_view = eval_same_view(work, base, v)
        assert getattr(pyact, name + "_")(in_view) is in_view
        np.testing.assert_array_equal(in_view, expected)
        outside = np.ones(base.shape, bool)
        eval_same_view(outside, base, v)[...] = False
        np.testing.assert_array_equal(work[outside], base[outside])


def eval_same_view(other, base, view):
    """The view of `other` at the same offset and strides as `view` of `base`."""
    offset = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    scale = other.itemsize / base.itemsize
    strides = tuple(int(s * scale) for s in view.strides)
    start = other.__array_interface__["data"][0] + int(offset * scale)
    return np.lib.stride_tricks.as_strided(
        other.reshape(-1)[(start - other.__array_interface__["data"][0]) // other.itemsize:],
        view.shape, strides)


@pytest.mark.parametrize("name", NAMES)
def test_byte_swapped_unaligned_and_memmap(name, tmp_path):
    act = pyact.REGISTRY[name]
    params = act.example_params()
    x = np.linspace(-5, 5, 37)
    expected = SLOW[name](x, **params)
    swapped = x.astype(">f8")
    np.testing.assert_array_equal(getattr(pyact, name)(swapped, **params), expected)
    raw = np.zeros(37 * 8 + 1, np.uint8)
    unaligned = raw[1:].view(np.float64)
    unaligned[:] = x
    np.testing.assert_array_equal(getattr(pyact, name)(unaligned, **params), expected)
    getattr(pyact, name + "_")(unaligned, **params)
    np.testing.assert_array_equal(unaligned, expected)
    mm = np.memmap(tmp_path / "x.bin", dtype=np.float64, mode="w+", shape=(37,))
    mm[:] = x
    getattr(pyact, name + "_")(mm, **params)
    mm.flush()
    np.testing.assert_array_equal(np.fromfile(tmp_path / "x.bin", np.float64), expected)
    ro = np.memmap(tmp_path / "x.bin", dtype=np.float64, mode="r", shape=(37,))
    with pytest.raises(ValueError, match="read-only"):
        getattr(pyact, name + "_")(ro, **params)


class Tagged(np.ndarray):
    """A trivial ndarray subclass."""


@pytest.mark.parametrize("name", NAMES + [a.name for a in AXIS])
def test_array_subclasses(name):
    params = pyact.REGISTRY[name].example_params()
    x = np.linspace(-4, 4, 24).reshape(4, 6).view(Tagged)
    expected = SLOW[name](np.asarray(x), **params)
    got = getattr(pyact, name)(x, **params)
    assert type(got) is np.ndarray  # out of place returns a base-class array, like np.asarray
    np.testing.assert_array_equal(got, expected)
    y = x.copy()
    assert getattr(pyact, name + "_")(y, **params) is y  # in place keeps the object
    np.testing.assert_array_equal(np.asarray(y), expected)
    m = np.ma.masked_array(np.linspace(-4, 4, 24), mask=np.arange(24) % 2 == 0)
    np.testing.assert_array_equal(getattr(pyact, name)(m, **params),
                                  SLOW[name](np.asarray(m.data), **params))


@pytest.mark.parametrize("bad", [None, "abc", b"abc", object(), [1, "a"], {"a": 1},
                                 np.array(["x"]), np.array([1 + 2j]), np.array([None]),
                                 np.array([1.0], dtype=np.longdouble),
                                 np.array(["2020-01-01"], dtype="datetime64[D]")])
@pytest.mark.parametrize("name", ["relu", "gelu", "softmax"])
def test_non_numeric_inputs_raise_type_error(name, bad):
    with pytest.raises(TypeError, match="x"):
        getattr(pyact, name)(bad)


def _under_address_sanitizer():
    """The ASan runtime is loaded (the sanitizer build, README "Development")."""
    try:
        with open(f"/proc/{os.getpid()}/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


def _rss_bytes():
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_no_leaks_on_success_and_error_paths():
    x = np.linspace(-3, 3, 64)
    g = np.ones(64)
    o = np.empty(64)
    ro = x.copy()
    ro.flags.writeable = False
    bad_out = np.empty(63)
    x16 = x.astype(np.float16)
    ints = np.arange(64)

    def calls():
        for act in ELEMENTWISE:
            n = act.name
            p = act.example_params()
            getattr(pyact, n)(x, **p)
            getattr(pyact, n)(x, out=o, **p)
            getattr(pyact, n + "_derivative")(x[::2], **p)  # Python path
            getattr(pyact, n + "_backward")(g, x=x, **p)
            for call in (lambda: getattr(pyact, n + "_")(ro, **p),
                         lambda: getattr(pyact, n)(x, out=bad_out, **p),
                         lambda: getattr(pyact, n + "_backward")(g, **p)):
                try:
                    call()
                except (TypeError, ValueError):
                    pass
        for act in AXIS:
            y = getattr(pyact, act.name)(x.reshape(8, 8), axis=0)
            getattr(pyact, act.name + "_backward")(g.reshape(8, 8), y=y, axis=0)
            getattr(pyact, act.name)(x16.reshape(8, 8), axis=1)   # float16: through float32
            for call in (lambda: getattr(pyact, act.name)(x.reshape(8, 8), axis=2),
                         lambda: getattr(pyact, act.name + "_")(ro.reshape(8, 8)),
                         lambda: getattr(pyact, act.name + "_backward")(g, y=x[:-1])):
                try:
                    call()
                except (TypeError, ValueError):
                    pass
        for n in ("gelu", "softplus"):   # conversions: float16, integers, lists
            getattr(pyact, n)(x16)
            getattr(pyact, n + "_backward")(ints, x=x16)
            getattr(pyact, n)(x.tolist())

    refcounts = [sys.getrefcount(a) for a in (x, g, o, ro, bad_out)]
    for _ in range(50):  # warm up caches and allocator pools
        calls()
    gc.collect()
    tracemalloc.start()
    rss0 = _rss_bytes()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(400):
        calls()
    gc.collect()
    growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap0, "filename"))
    tracemalloc.stop()
    rss_growth = _rss_bytes() - rss0
    # 400 rounds of ~200 calls: a leak of even one small object per call would
    # be > 1 MB; allow a little for interpreter caches.
    assert growth < 256 * 1024, f"traced memory grew by {growth} bytes"
    if not _under_address_sanitizer():  # its allocator holds freed memory in quarantine
        assert rss_growth < 8 * 1024 * 1024, f"RSS grew by {rss_growth} bytes"
    assert [sys.getrefcount(a) for a in (x, g, o, ro, bad_out)] == refcounts


@pytest.mark.parametrize("name", ["sigmoid", "gelu", "mish", "softmax"])
def test_python_threads_separate_and_shared_inputs(name):
    rng = np.random.default_rng(3)
    shared = rng.normal(0, 3, 200_000)
    expected = getattr(pyact, name)(shared)
    own = [rng.normal(0, 3, 50_000) for _ in range(8)]
    own_expected = [getattr(pyact, name)(a) for a in own]
    results, errors = {}, []

    def work(i):
        try:
            for _ in range(3):
                results[("shared", i)] = getattr(pyact, name)(shared)
                buf = own[i].copy()
                getattr(pyact, name + "_")(buf)
                results[("own", i)] = buf
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(8):
        assert np.array_equal(results[("shared", i)], expected, equal_nan=True)
        assert np.array_equal(results[("own", i)], own_expected[i], equal_nan=True)


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 0


@pytest.mark.skipif(_available_bytes() < 20 * 2**30,
                    reason="needs ~18 GiB free for arrays of more than 2**31 elements")
def test_more_than_2_pow_31_elements():
    n = 2**31 + 17
    x = np.empty(n, np.float32)
    x[:] = -1.0
    x[-5:] = [2.0, -3.0, np.nan, 7.0, -0.5]
    pyact.relu_(x)
    assert x[0] == 0 and x[2**31 - 1] == 0 and x[2**31 + 5] == 0
    np.testing.assert_array_equal(x[-5:], [2.0, 0.0, np.nan, 7.0, 0.0])
    y = pyact.hardtanh(x[-2**20:])
    assert y[-1] == 0.0 and y[-2] == 1.0
    del x


@pytest.mark.parametrize("value", [10**400, -10**400, 2**1024])
@pytest.mark.parametrize("name", [a.name for a in ELEMENTWISE if a.real_params])
def test_parameter_too_large_for_a_float_is_a_value_error(name, value):
    """float(10**400) raises OverflowError; pyact reports it as a bad value."""
    act = pyact.REGISTRY[name]
    x = np.linspace(-3, 3, 8)
    keep = x.copy()
    for p in act.real_params:
        params = {**act.example_params(), p.name: value}
        for call in (lambda: getattr(pyact, name)(x, **params),
                     lambda: getattr(pyact, name + "_")(x, **params),
                     lambda: getattr(pyact, name + "_derivative")(x, **params),
                     lambda: getattr(pyact, name + "_backward")(x, x=x, **params),
                     lambda: SLOW[name](x, **params)):
            with pytest.raises(ValueError, match=p.name):
                call()
    np.testing.assert_array_equal(x, keep)


class _LayoutChecker:
    """Stands in for the kernel module: every array a kernel is given must be
    C-contiguous, aligned and in native byte order (the kernels read float* and
    double* directly; a misaligned load is undefined behaviour in C, which
    UBSan reports and which a vectorising compiler may turn into a fault)."""

    def __init__(self, module):
        self._module = module
        self.calls = 0

    def __getattr__(self, name):
        target = getattr(self._module, name)
        if not callable(target):
            return target

        def checked(*args):
            for a in args:
                if isinstance(a, np.ndarray):
                    assert a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative, (
                        name, a.dtype, a.strides, a.flags.aligned)
            self.calls += 1
            return target(*args)
        return checked


def _unaligned(a):
    raw = np.zeros(a.nbytes + 1, np.uint8)
    u = raw[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned or a.size == 0
    return u


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_only_see_aligned_contiguous_native_buffers(monkeypatch, dtype):
    checker = _LayoutChecker(_api._kernels)
    monkeypatch.setattr(_api, "_kernels", checker)
    base = np.linspace(-4, 4, 24).astype(dtype).reshape(4, 6)
    layouts = {
        "unaligned": lambda: _unaligned(base),
        "unaligned F": lambda: _unaligned(base.T.copy()).T,
        "byte-swapped unaligned": lambda: _unaligned(base.astype(base.dtype.newbyteorder())),
        "strided": lambda: np.repeat(base, 2, axis=1)[:, ::2],
    }
    for layout, make in layouts.items():
        for act in ELEMENTWISE:
            n, p = act.name, act.example_params()
            expected = SLOW[n](base, **p)
            np.testing.assert_array_equal(SLOW[n](make(), **p), expected, err_msg=layout)
            v = make()
            if v.dtype.isnative:
                SLOW[n + "_"](v, **p)
                np.testing.assert_array_equal(v, expected, err_msg=layout)
            SLOW[n + "_derivative"](make(), out=make() if v.dtype.isnative else None, **p)
            SLOW[n + "_backward"](make(), x=make(), **p)
            if act.backward_y and (act.y_rule is None or act.y_rule(p) is None):
                SLOW[n + "_backward"](make(), y=make(), **p)
        for act in AXIS:
            for axis in (0, 1):
                expected = SLOW[act.name](base, axis=axis)
                np.testing.assert_array_equal(SLOW[act.name](make(), axis=axis), expected)
                v = make()
                if v.dtype.isnative:
                    SLOW[act.name + "_"](v, axis=axis)
                    np.testing.assert_array_equal(v, expected)
                SLOW[act.name + "_backward"](make(), y=make(), axis=axis)
    assert checker.calls > 4 * len(layouts) * len(ELEMENTWISE)


@pytest.mark.parametrize("level", _dispatch.available_levels())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_parameters_on_every_level(level, dtype, monkeypatch):
    """Parameters at the edges of their rules, on the kernels of every ISA level
    (found by tools/fuzz.py): the special values keep their limits."""
    from conftest import assert_ulp, exact_backward, exact_derivative, exact_forward
    monkeypatch.setattr(_api, "_kernels", _dispatch.load(level))
    # leaky_relu with a zero slope: the limit at -inf is 0, not 0 * inf = NaN
    x = np.array([-np.inf, -2.0, np.nan, 3.0, np.inf], dtype)
    want = np.array([0.0, 0.0, np.nan, 3.0, np.inf], dtype)
    np.testing.assert_array_equal(SLOW["leaky_relu"](x, negative_slope=0.0), want)
    y = x.copy()
    SLOW["leaky_relu_"](y, negative_slope=0.0)
    np.testing.assert_array_equal(y, want)
    # celu with alpha < 0 grows like e^(x/alpha) for x -> -inf: results beyond the
    # float range are infinities, not NaN; a huge alpha keeps finite results
    act = pyact.REGISTRY["celu"]
    info = np.finfo(dtype)
    x = np.array([-np.inf, -info.max, -1e30, -44.94, -44.0, -40.0, -5.0, -1e-30, -0.0, 2.0,
                  np.nan], dtype)
    grad = np.linspace(0.5, 2.0, x.size).astype(dtype)
    for alpha in (-0.0625, -1.0, -1e-30, float(info.max) / 2, float(info.max)):
        params = {"alpha": alpha}
        label = f"[{level}] celu alpha={alpha}"
        assert_ulp(SLOW["celu"](x, **params), exact_forward(act, params, x), dtype,
                   act.ulp_bound("forward"), x, label)
        assert_ulp(SLOW["celu_derivative"](x, **params), exact_derivative(act, params, x),
                   dtype, act.ulp_bound("derivative"), x, label + " derivative")
        assert_ulp(SLOW["celu_backward"](grad, x=x, **params),
                   exact_backward(act, params, grad, x), dtype, act.ulp_bound("backward"),
                   x, label + " backward")
    # softplus with a tiny beta: log(1 + e^(beta x)) / beta beyond the float range is inf
    act = pyact.REGISTRY["softplus"]
    x = np.array([-np.inf, -1.0, 0.0, 1e-30, 1.25, 1e30, np.inf, np.nan], dtype)
    for beta in (float(info.smallest_subnormal), -float(info.smallest_subnormal),
                 float(info.tiny), 1e-30):
        params = {"beta": beta, "threshold": 20.0}
        label = f"[{level}] softplus beta={beta}"
        assert_ulp(SLOW["softplus"](x, **params), exact_forward(act, params, x), dtype,
                   act.ulp_bound("forward"), x, label)
        assert_ulp(SLOW["softplus_derivative"](x, **params), exact_derivative(act, params, x),
                   dtype, act.ulp_bound("derivative"), x, label + " derivative")
    # softplus where beta * x underflows to 0 at a threshold of 0: beta x > 0 is the
    # linear region all the same (the result is x, not softplus(0) / beta)
    x = np.array([float(info.smallest_subnormal), 6.025095053697685e-212, 1e-30, -1e-30,
                  -float(info.smallest_subnormal)], dtype)
    for beta in (0.5, float(info.tiny) / 10, -0.5):
        params = {"beta": beta, "threshold": 0.0}
        label = f"[{level}] softplus beta={beta} threshold=0"
        with np.errstate(over="ignore", under="ignore"):
            assert_ulp(SLOW["softplus"](x, **params), exact_forward(act, params, x), dtype,
                       act.ulp_bound("forward"), x, label)
            assert_ulp(SLOW["softplus_derivative"](x, **params),
                       exact_derivative(act, params, x), dtype, act.ulp_bound("derivative"),
                       x, label + " derivative")
    # elu with a huge alpha: alpha e^x is finite where e^x alone underflows (in float64
    # down to x = -1454.9 for alpha near the double range; alpha's exponent joins
    # e^x's scales, vmath.h's vm_mul_exp_split), and a tiny alpha keeps its digits
    act = pyact.REGISTRY["elu"]
    x = np.array([-np.inf, -1500.0, -1460.0, -1454.9, -1454.0, -1420.0, -1400.5, -800.0,
                  -745.2, -700.0, -104.0, -88.0, -1.0, -1e-30, 0.0, np.nan], dtype)
    grad = np.linspace(0.5, 2.0, x.size).astype(dtype)
    for alpha in (1e30, float(info.max) / 2, float(info.max), -float(info.max),
                  float(info.smallest_subnormal), 1e-300):
        params = {"alpha": alpha}
        label = f"[{level}] elu alpha={alpha}"
        assert_ulp(SLOW["elu_derivative"](x, **params), exact_derivative(act, params, x),
                   dtype, act.ulp_bound("derivative"), x, label + " derivative")
        assert_ulp(SLOW["elu_backward"](grad, x=x, **params),
                   exact_backward(act, params, grad, x), dtype, act.ulp_bound("backward"),
                   x, label + " backward")


@pytest.mark.parametrize("level", _dispatch.available_levels())
@pytest.mark.parametrize("name", [a.name for a in AXIS])
def test_axis_backward_with_huge_grads_on_every_level(level, name, monkeypatch):
    """grad * y sums with factors beyond 2**995 (found by tools/fuzz.py): the
    vjp keeps its bound where it cancels."""
    from pyact import _check
    from pyact import reference as ref
    monkeypatch.setattr(_api, "_kernels", _dispatch.load(level))
    act = pyact.REGISTRY[name]
    rng = np.random.default_rng(5)
    x = np.vstack([[-5.0, -5.0, -np.inf, -np.inf, 5.0], rng.normal(0, 3, (7, 5))])
    y = SLOW[name](x, axis=-1)
    for big in (1e300, 1.7e308 / 8, 5e299):
        grad = np.vstack([[0, 0, 0, 0, big], rng.normal(0, 1, (7, 5)) * big])
        got = SLOW[name + "_backward"](grad, y=y, axis=-1)
        exact = act.reference_derivative(grad.astype(np.longdouble), y.astype(np.longdouble),
                                         axis=-1)
        err = _check.slice_ulp_error(got, exact, np.float64, -1)
        assert err.max() <= act.ulp_bound("backward_y"), (level, big, err.max(), got, exact)
        assert not np.isnan(ref.ulp_error(got, exact, np.float64)).any()


def test_fuzz_harness_runs_clean():
    """A short run of tools/fuzz.py (the long runs are for development, see README)."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "fuzz.py"
    spec = importlib.util.spec_from_file_location("pyact_fuzz", path)
    fuzz = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fuzz  # for its dataclasses
    try:
        spec.loader.exec_module(fuzz)
        names = fuzz.public_names()
        assert len(names) == 4 * len(ELEMENTWISE) + 3 * len(AXIS)
        stats = fuzz.run(names, examples=120, seed=2024, batch=60, verbose=False)
    finally:
        del sys.modules[spec.name]
    assert stats["examples"] >= 120
    assert stats["ok"] > 30 and stats["raised TypeError"] > 10  # both kinds of call happen
