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
from pyact import _api
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
