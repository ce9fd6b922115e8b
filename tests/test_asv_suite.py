"""The asv suite (benchmarks/bench_activations.py) covers the registry and every
parameter set it declares can be set up and called; nothing here is timed.

The suite lives in the source tree, not in the installed package, so these
tests are skipped where the tests run without it (e.g. against a wheel).
"""
from __future__ import annotations

import contextlib
import importlib.util
import itertools
import pathlib
import sys

import numpy as np
import pytest

import pyact
from pyact._registry import REGISTRY

SUITE = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_activations.py"
if not SUITE.exists():
    pytest.skip("benchmarks/bench_activations.py is not here (tests run outside the source "
                "tree)", allow_module_level=True)

ELEMENTWISE_FORMS = {"OutOfPlace": "forward", "InPlace": "inplace",
                     "Derivative": "derivative", "Backward": "backward"}
AXIS_FORMS = {"AxisOutOfPlace": "forward", "AxisInPlace": "inplace", "AxisBackward": "backward"}


def _import_suite(name="_asv_suite_under_test"):
    spec = importlib.util.spec_from_file_location(name, SUITE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@contextlib.contextmanager
def _restored_state():
    """Importing the suite sets one thread for pyact and torch and silences NumPy's
    floating-point warnings (what the benchmark processes want); undo that."""
    try:
        import torch
    except ImportError:
        torch = None
    saved = (np.geterr(), pyact.get_num_threads(),
             torch.get_num_threads() if torch is not None else None)
    try:
        yield
    finally:
        if torch is not None:
            torch.set_num_threads(saved[2])
        pyact.set_num_threads(saved[1])
        np.seterr(**saved[0])


@pytest.fixture(scope="module")
def suite():
    with _restored_state():
        yield _import_suite()


def test_every_registry_entry_in_every_form(suite):
    elementwise = [n for n, a in REGISTRY.items() if a.kind != "axis"]
    axis = [n for n, a in REGISTRY.items() if a.kind == "axis"]
    for cls_name, form in ELEMENTWISE_FORMS.items():
        cls = getattr(suite, cls_name)
        assert cls.form == form
        labels = cls.params[0]
        assert {suite.CASES[label].act.name for label in labels} == set(elementwise)
        assert "gelu(approximate=tanh)" in labels
        assert cls.params[1] == ["float32", "float64"]
        assert {"pyact", "numpy"} <= set(cls.params[3])
    for cls_name, form in AXIS_FORMS.items():
        cls = getattr(suite, cls_name)
        assert cls.form == form
        assert cls.params[0] == axis
        assert cls.params[2] == [(1000, 1000), (100_000, 10), (10, 100_000)]
        assert {"pyact", "numpy"} <= set(cls.params[3])
    assert suite.OutOfPlace.params[2] == [1_000, 100_000, 10_000_000]
    assert "torch" in suite.OutOfPlace.params[3] and "torch" in suite.Backward.params[3]


def test_import_guard_rejects_an_activation_without_benchmarks(monkeypatch):
    import pyact._registry as registry
    monkeypatch.setattr(registry, "REGISTRY", {**REGISTRY, "made_up": REGISTRY["relu"]})
    with _restored_state(), pytest.raises(
            RuntimeError, match=r"activations without benchmarks: \['made_up'\]"):
        _import_suite("_asv_suite_guard")


def _smallest(cls):
    """Every parameter set of cls at its smallest size or shape, one dtype."""
    ops, dtypes, shapes, impls = cls.params
    smallest = min(shapes, key=lambda s: np.prod(s))
    return [(op, dtypes[0], smallest, impl) for op, impl in itertools.product(ops, impls)]


@pytest.mark.parametrize("cls_name", list(ELEMENTWISE_FORMS) + list(AXIS_FORMS))
def test_parameter_sets_set_up_and_run(suite, cls_name):
    # pyact and NumPy must always run; torch may only be skipped (NotImplementedError)
    cls = getattr(suite, cls_name)
    method = getattr(cls, f"time_{cls.form}")
    ran = set()
    for params in _smallest(cls):
        bench = cls()
        try:
            bench.setup(*params)
        except NotImplementedError:
            assert params[3] == "torch", params
            continue
        method(bench, *params)
        method(bench, *params)
        ran.add(params[3])
    assert {"pyact", "numpy"} <= ran


def test_in_place_input_is_restored_by_setup(suite):
    # asv re-runs setup before every call of an in-place form (number = 1)
    params = ("sigmoid", "float64", 100_000, "pyact")
    bench = suite.InPlace()
    bench.setup(*params)
    _, _, arrays = suite._PREPARED[("inplace", "sigmoid", "float64", (100_000,), "pyact")]
    np.testing.assert_array_equal(arrays["scratch"], arrays["saved"])
    bench.time_inplace(*params)
    np.testing.assert_array_equal(arrays["scratch"], pyact.sigmoid(arrays["saved"]))
    bench.setup(*params)
    np.testing.assert_array_equal(arrays["scratch"], arrays["saved"])


def test_threads_benchmark_sets_and_restores_threads(suite):
    bench = suite.Threads()
    bench.setup("relu", "float32", "default")
    assert pyact.get_num_threads() == suite.DEFAULT_THREADS
    bench.time_forward("relu", "float32", "default")
    bench.teardown("relu", "float32", "default")
    assert pyact.get_num_threads() == 1
    bench.setup("relu", "float32", "1")
    assert pyact.get_num_threads() == 1
    bench.teardown("relu", "float32", "1")
