"""Threads: results bitwise identical for any thread count (every registry entry, every
form, every ISA level), set/get_num_threads, PYACT_NUM_THREADS / OMP_NUM_THREADS and
threadpoolctl."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyact
from pyact import _api, _check, _dispatch, _runtime, _threads
from pyact._registry import AXIS

from conftest import (EXAMPLE_CASES, SCALED_CASES, assert_bitwise_equal, case_params, fn,
                      y_allowed)
from test_dispatch import use_level

ROOT = Path(__file__).resolve().parent.parent
OPENMP = _threads.openmp()
needs_openmp = pytest.mark.skipif(not OPENMP, reason="built without OpenMP")


@pytest.fixture(autouse=True)
def restore_threads():
    """Leave pyact's limit and OpenMP's default as they were."""
    limit, default = _runtime.thread_limit(), _runtime.omp_max_threads()
    yield
    _runtime.set_thread_limit(limit)
    _runtime.omp_set_num_threads(default)


def run_python(code: str, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("PYACT_NUM_THREADS", "OMP_NUM_THREADS")}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)


def data(dtype, n, seed=0):
    """n inputs: the check sample (special values, NaN, subnormals, huge) repeated."""
    base = _check.sample(dtype, 4000, seed=seed)
    return np.resize(base, n)


def all_forms(act, params, x, grad):
    """Every form of one activation on x: {label: result}."""
    results = {"forward": fn(act)(x, **params),
               "derivative": fn(act, "_derivative")(x, **params),
               "backward": fn(act, "_backward")(grad, x=x, **params)}
    inplace = x.copy()
    fn(act, "_")(inplace, **params)
    results["in place"] = inplace
    if y_allowed(act, params, x.dtype.type):
        results["backward_y"] = fn(act, "_backward")(grad, y=results["forward"], **params)
    return results


def axis_forms(act, x, grad):
    results = {}
    for axis in (-1, 0):
        y = fn(act)(x, axis=axis)
        results[f"forward axis={axis}"] = y
        results[f"backward axis={axis}"] = fn(act, "_backward")(grad, y=y, axis=axis)
    return results


# ---- 1 and 2 threads give the same bits -------------------------------------------------

@needs_openmp
@pytest.mark.parametrize("act, params", case_params(EXAMPLE_CASES + SCALED_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_large_arrays_same_bits_for_1_and_2_threads(act, params, dtype):
    """Above the parallel threshold (with the real thresholds) for every form."""
    n = 300_007  # odd, and above 2 x the per-thread minimum of every kernel
    pyact.set_num_threads(2)
    assert _dispatch.kernels._threads_for_size(n) == 2
    x = data(dtype, n)
    grad = np.random.default_rng(1).normal(0.0, 2.0, n).astype(dtype)
    two = all_forms(act, params, x, grad)
    pyact.set_num_threads(1)
    assert _dispatch.kernels._threads_for_size(n) == 1
    one = all_forms(act, params, x, grad)
    for form in one:
        assert_bitwise_equal(two[form], one[form], f"{act.name} {form}")


@needs_openmp
@pytest.mark.parametrize("act", [pytest.param(a, id=a.name) for a in AXIS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_softmax_rows_same_bits_for_1_and_2_threads(act, dtype):
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 5.0, (301, 257)).astype(dtype)
    x[3, 5] = -np.inf
    x[7, :] = -800.0
    x[11, 4] = np.nan
    grad = rng.normal(0.0, 1.0, x.shape).astype(dtype)
    pyact.set_num_threads(2)
    two = axis_forms(act, x, grad)
    pyact.set_num_threads(1)
    one = axis_forms(act, x, grad)
    for form in one:
        assert_bitwise_equal(two[form], one[form], f"{act.name} {form}")


@pytest.fixture(params=_dispatch.available_levels())
def tiny_blocks(request, monkeypatch):
    """One ISA level's kernels, forced to split even tiny arrays at odd places."""
    module = _dispatch.load(request.param)
    use_level(module, monkeypatch)
    old = module._parallel_tuning(cheap=1, wide=1, grain=1)
    yield module
    module._parallel_tuning(*old)


@pytest.mark.parametrize("act, params", case_params(EXAMPLE_CASES))
def test_tiny_blocks_same_bits_for_every_thread_count(tiny_blocks, act, params):
    """Blocks of 1, 2, ... elements with block edges everywhere: still the same bits
    as one thread (and each element computed once: in place too)."""
    for dtype in (np.float32, np.float64):
        x = data(dtype, 1001, seed=4)
        grad = np.random.default_rng(4).normal(0.0, 2.0, x.size).astype(dtype)
        pyact.set_num_threads(1)
        one = all_forms(act, params, x, grad)
        for threads in (2, 3, 7):
            pyact.set_num_threads(threads)
            if OPENMP:
                assert tiny_blocks._threads_for_size(x.size) == threads
            got = all_forms(act, params, x, grad)
            for form in one:
                assert_bitwise_equal(got[form], one[form], f"{act.name} {form} {threads}")


@pytest.mark.parametrize("act", [pytest.param(a, id=a.name) for a in AXIS])
def test_tiny_blocks_softmax_rows(tiny_blocks, act):
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(6)
        x = rng.normal(0.0, 5.0, (13, 9)).astype(dtype)
        grad = rng.normal(0.0, 1.0, x.shape).astype(dtype)
        pyact.set_num_threads(1)
        one = axis_forms(act, x, grad)
        for threads in (2, 5, 20):
            pyact.set_num_threads(threads)
            got = axis_forms(act, x, grad)
            for form in one:
                assert_bitwise_equal(got[form], one[form], f"{act.name} {form} {threads}")


def test_threads_never_exceed_the_work():
    module = _dispatch.kernels
    pyact.set_num_threads(8)
    old = module._parallel_tuning(cheap=100, wide=10)
    try:
        expected = 8 if OPENMP else 1
        assert module._threads_for_size(0) == 1
        assert module._threads_for_size(199) == 1
        assert module._threads_for_size(200) == min(2, expected)
        assert module._threads_for_size(10**6) == expected
        assert module._threads_for_size(35, wide=True) == min(3, expected)
    finally:
        module._parallel_tuning(*old)


# ---- set / get -------------------------------------------------------------------------

def test_set_get_num_threads():
    for n in (1, 2, 3, np.int64(2)):
        pyact.set_num_threads(n)
        assert pyact.get_num_threads() == (int(n) if OPENMP else 1)
        assert pyact.config()["num_threads"] == pyact.get_num_threads()
    assert pyact.set_num_threads(1) is None


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError),
                                        (2**40, ValueError), (1.0, TypeError),
                                        (2.5, TypeError), ("2", TypeError),
                                        (None, TypeError), (True, TypeError)])
def test_set_num_threads_rejects(bad, error):
    pyact.set_num_threads(2)
    with pytest.raises(error, match="set_num_threads"):
        pyact.set_num_threads(bad)
    assert pyact.get_num_threads() == (2 if OPENMP else 1)  # unchanged


@needs_openmp
def test_limit_is_process_wide():
    """A limit set in one Python thread caps kernels called from another."""
    import threading
    pyact.set_num_threads(1)
    seen = []
    t = threading.Thread(target=lambda: seen.append(
        (pyact.get_num_threads(), _dispatch.kernels._threads_for_size(10**7))))
    t.start()
    t.join()
    assert seen == [(1, 1)]


# ---- environment --------------------------------------------------------------------------

SHOW = "import pyact; print(pyact.get_num_threads(), pyact.config()['num_threads'])"


@needs_openmp
@pytest.mark.parametrize("env, expected", [
    ({"PYACT_NUM_THREADS": "1"}, 1),
    ({"PYACT_NUM_THREADS": " 3 "}, 3),
    ({"OMP_NUM_THREADS": "1"}, 1),
    ({"OMP_NUM_THREADS": "3"}, 3),
    ({"PYACT_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}, 2),  # pyact's own wins
    ({"PYACT_NUM_THREADS": "", "OMP_NUM_THREADS": "2"}, 2),
])
def test_environment(env, expected):
    r = run_python(SHOW, **env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(expected)] * 2


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_pyact_num_threads_is_an_import_error(value):
    r = run_python("import pyact", PYACT_NUM_THREADS=value)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and f"PYACT_NUM_THREADS={value!r}" in last, r.stderr


# ---- threadpoolctl -------------------------------------------------------------------------

@needs_openmp
def test_threadpoolctl_controls_pyact():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pyact.set_num_threads(2)
    info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]
    assert info and any(i["num_threads"] == 2 for i in info), info
    with threadpoolctl.threadpool_limits(1):
        assert pyact.get_num_threads() == 1
        assert _dispatch.kernels._threads_for_size(10**7) == 1
    assert pyact.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert pyact.get_num_threads() == 1
    assert pyact.get_num_threads() == 2
