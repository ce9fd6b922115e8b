"""Streaming stores (csrc/stream.h): large out-of-place results of the memory-bound
kernels go out a tile at a time with non-temporal stores.  The decision (size,
overlap, alignment) and the bits of every streamed result, on every ISA level."""
from __future__ import annotations

import numpy as np
import pytest

import pyact
from pyact import _dispatch, _runtime

from conftest import EXAMPLE_CASES, assert_bitwise_equal, case_params, fn, y_allowed
from test_dispatch import use_level
from test_threads import data

STREAMING = _dispatch.kernels.STREAM_STORES
needs_streaming = pytest.mark.skipif(not STREAMING, reason="no streaming stores on this target")


@pytest.fixture(params=_dispatch.available_levels())
def level(request, monkeypatch):
    """One ISA level's kernels, with pyact's thread limit restored afterwards."""
    module = _dispatch.load(request.param)
    use_level(module, monkeypatch)
    limit = _runtime.thread_limit()
    yield module
    _runtime.set_thread_limit(limit)


def out_of_place_forms(act, params, x, grad, outs):
    """Every out-of-place form of one activation, each into its own given buffer."""
    results = {"forward": fn(act)(x, out=outs[0], **params),
               "derivative": fn(act, "_derivative")(x, out=outs[1], **params),
               "backward": fn(act, "_backward")(grad, x=x, out=outs[2], **params)}
    if y_allowed(act, params, x.dtype.type):
        y = fn(act)(x, **params)
        results["backward_y"] = fn(act, "_backward")(grad, y=y, out=outs[3], **params)
    return {form: r.copy() for form, r in results.items()}


@pytest.mark.parametrize("act, params", case_params(EXAMPLE_CASES))
def test_streamed_results_have_the_same_bits(level, act, params):
    """With every output streamed: outputs starting 0-3 elements past a 64-byte
    boundary (a head before the first full tile), tiles, a tail, and thread blocks
    that start between tiles: the bits of the ordinary stores."""
    n = 2 * 1024 + 37
    for dtype in (np.float32, np.float64):
        x = data(dtype, n, seed=5)
        grad = np.random.default_rng(5).normal(0.0, 2.0, n).astype(dtype)
        old = level._stream_tuning(1 << 60)
        try:
            expected = out_of_place_forms(act, params, x, grad, [None] * 4)
            level._stream_tuning(1)
            for offset in range(4):
                space = np.zeros((4, n + 64), dtype)
                base = -space[0].ctypes.data % 64 // space.itemsize  # 64-byte aligned start
                outs = [row[base + offset:base + offset + n] for row in space]
                for threads in (1, 3):
                    pyact.set_num_threads(threads)
                    got = out_of_place_forms(act, params, x, grad, outs)
                    for form in expected:
                        assert_bitwise_equal(got[form], expected[form],
                                             f"{act.name} {form} offset {offset} threads {threads}")
        finally:
            level._stream_tuning(old)


@needs_streaming
def test_streaming_decision():
    kernels = _dispatch.kernels
    limit = kernels._stream_tuning()
    assert limit == pyact.config()["stream_min_bytes"]
    n = limit // 8
    x, out = np.empty(n), np.empty(n)
    addr = out.ctypes.data
    assert kernels._streams_for(addr, x.ctypes.data, 0, limit, 8)
    assert not kernels._streams_for(addr, x.ctypes.data, 0, limit - 8, 8)   # small
    assert not kernels._streams_for(addr, addr, 0, limit, 8)                # in place
    assert not kernels._streams_for(addr, x.ctypes.data, addr + 8, limit, 8)  # overlaps b
    assert not kernels._streams_for(addr + 8, addr, 0, limit, 8)            # overlaps a
    assert kernels._streams_for(addr, addr + limit, addr - limit, limit, 8)  # adjacent
    assert not kernels._streams_for(addr + 4, x.ctypes.data, 0, limit, 8)   # misaligned


@needs_streaming
def test_large_out_of_place_calls_stream():
    """The real threshold: a large relu out of place streams, in place it does not,
    and both are right."""
    kernels = _dispatch.kernels
    n = kernels._stream_tuning() // 4 + 100
    x = np.resize(np.array([-2.0, -0.0, 0.0, 3.5, np.inf, -np.inf, np.nan], np.float32), n)
    out = np.empty_like(x)
    assert kernels._streams_for(out.ctypes.data, x.ctypes.data, 0, out.nbytes, 4)
    assert not kernels._streams_for(x.ctypes.data, x.ctypes.data, 0, x.nbytes, 4)
    expected = np.maximum(x, np.float32(0))   # NaN stays NaN
    assert_bitwise_equal(pyact.relu(x, out=out), expected, "relu out of place")
    pyact.relu_(x)
    assert_bitwise_equal(x, expected, "relu in place")
