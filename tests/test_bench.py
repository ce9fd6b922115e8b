"""Tests of the benchmark machinery (`python -m pyact bench`, pyact._bench and
pyact._baselines): tiny sizes, one repeat, no time budget, so they are fast.

PyTorch is optional: the torch tests run only when it is installed, and the
"torch is missing" path is tested by hiding torch from a subprocess.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import pyact
from pyact import _baselines, _bench
from pyact._registry import REGISTRY

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST = dict(repeat=1, min_time=0.0)
CASES = _bench.cases()
CASE_IDS = [c.label for c in CASES]


# Makes `import torch` fail as if torch were not installed (a meta-path
# finder, not sys.modules['torch'] = None, which SciPy's array-API helpers trip on).
HIDE_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch' (hidden by the test)")
sys.meta_path.insert(0, _NoTorch())
"""


def run_cli(*args, hide_torch=False, timeout=120):
    prelude = HIDE_TORCH if hide_torch else "import sys\n"
    code = prelude + "from pyact.__main__ import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


# ---- rows ----------------------------------------------------------------------------

def test_cases_cover_the_registry():
    assert {c.act.name for c in CASES} == set(REGISTRY)
    labels = [c.label for c in CASES]
    assert len(labels) == len(set(labels))
    assert "gelu(approximate=tanh)" in labels  # every value of a choice parameter
    for c in CASES:
        assert c.forms[:2] == ("forward", "inplace")
        assert "backward" in c.forms
        assert ("derivative" in c.forms) == (c.act.kind == "elementwise")
        assert ("backward_y" in c.forms) == (c.act.kind == "elementwise" and c.act.backward_y)


def test_rows_for_every_op_dtype_form():
    dtypes = ("float32", "float64")
    rows = list(_bench.bench(None, dtypes, sizes=[64], forms=_bench.FORMS, **FAST))
    got = [(r["op"], r["dtype"], r["form"]) for r in rows]
    expected = [(c.label, d, f) for c in CASES for d in dtypes for f in c.forms]
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got))
    for r in rows:
        assert r["pyact_ns"] >= 0 and r["pyact_call"]
        assert r["size"] == int(np.prod(r["shape"]))
        assert r["torch_ns"] is None and r["speedup_torch"] is None
        if _baselines._special is not None:  # every form has a NumPy baseline
            assert r["numpy_ns"] is not None and r["numpy_impl"] in r["numpy_candidates"], r
            assert r["numpy_ns"] == min(r["numpy_candidates"].values())
            if r["pyact_ns"] > 0:
                assert r["speedup_numpy"] == pytest.approx(r["numpy_ns"] / r["pyact_ns"])


def test_requested_subset_only():
    rows = list(_bench.bench(["relu", "softmax"], ("float32",), sizes=[10, 300],
                             forms=("inplace", "backward_y"), **FAST))
    got = sorted((r["op"], tuple(r["shape"]), r["form"]) for r in rows)
    # softmax has no backward_y form (its backward is from y already)
    assert got == sorted([("relu", (10,), "inplace"), ("relu", (10,), "backward_y"),
                          ("relu", (300,), "inplace"), ("relu", (300,), "backward_y"),
                          ("softmax", (1, 10), "inplace"), ("softmax", (3, 100), "inplace")])


def test_default_shapes():
    assert _bench.shapes_for(REGISTRY["relu"], None) == [(100_000,)]
    assert _bench.shapes_for(REGISTRY["softmax"], None) == [(1000, 1000), (100_000, 10),
                                                           (10, 100_000)]
    assert _bench.shapes_for(REGISTRY["softmax"], [1000]) == [(10, 100)]


@pytest.mark.parametrize("timing", ["median_seconds", "interleaved_medians"])
def test_in_place_timing_restores_before_every_call(timing):
    # The in-place forms are timed on data restored before each call, so that
    # repeated application cannot drift the input into a trivial range; also
    # when the batches of several implementations are interleaved.
    saved = np.linspace(-5, 5, 101)
    scratch = saved.copy()
    seen = []

    def step():
        seen.append(scratch.copy())
        pyact.sigmoid_(scratch)

    def restore():
        np.copyto(scratch, saved)

    if timing == "median_seconds":
        _bench.median_seconds(step, repeat=3, min_time=0.0, restore=restore)
    else:
        _bench.interleaved_medians({"sigmoid_": (step, restore), "noop": ((lambda: None), None)},
                                   repeat=3, min_time=0.0)
    assert len(seen) >= 4
    for s in seen:
        np.testing.assert_array_equal(s, saved)


def test_batches_are_interleaved():
    # Each round times one batch of every implementation in turn (after one
    # untimed call), so that load from elsewhere falls on all of them alike;
    # calibration (two calls each) comes first, in the same order.
    order = []
    calls = {key: ((lambda key=key: order.append(key)), None) for key in ("a", "b", "c")}
    medians = _bench.interleaved_medians(calls, repeat=3, min_time=0.0)
    assert set(medians) == {"a", "b", "c"}
    assert all(t >= 0 for t in medians.values())
    assert order == ["a", "a", "b", "b", "c", "c"] + ["a", "a", "b", "b", "c", "c"] * 3


def test_summary_lines():
    rows = [{"op": "a", "dtype": "float32", "shape": [10], "form": "forward",
             "speedup_numpy": 2.0, "speedup_torch": None},
            {"op": "b", "dtype": "float64", "shape": [2, 5], "form": "backward",
             "speedup_numpy": 0.5, "speedup_torch": None}]
    lines = _bench.summary_lines(rows, with_torch=True)
    assert "geometric mean speed-up 1.00x over 2 cases" in lines[0]
    assert "minimum 0.50x (b float64 2x5 backward)" in lines[0]
    assert lines[1] == "vs PyTorch: no comparable cases"


# ---- command line --------------------------------------------------------------------

def test_cli_json(tmp_path):
    path = tmp_path / "bench.json"
    r = run_cli("bench", "--ops", "relu", "gelu", "softmax", "--sizes", "200",
                "--repeat", "1", "--min-time", "0", "--forms", "all", "--json", str(path))
    assert r.returncode == 0, r.stderr
    data = json.loads(path.read_text())
    assert data["meta"]["repeat"] == 1 and data["meta"]["config"]["version"] == pyact.__version__
    rows = data["rows"]
    ops = {c.label: c for c in _bench.cases(["relu", "gelu", "softmax"])}
    expected = {(op, d, f) for op, c in ops.items() for d in ("float32", "float64")
                for f in c.forms}
    assert {(r["op"], r["dtype"], r["form"]) for r in rows} == expected
    assert len(rows) == len(expected)
    for row in rows:
        assert isinstance(row["pyact_ns"], float)
    assert f"wrote {len(rows)} rows" in r.stdout
    assert "geometric mean speed-up" in r.stdout and "minimum" in r.stdout


def test_cli_compare_torch_without_torch():
    r = run_cli("bench", "--ops", "relu", "--sizes", "100", "--repeat", "1", "--min-time", "0",
                "--compare", "torch", hide_torch=True)
    assert r.returncode == 0, r.stderr
    assert "PyTorch is not installed" in r.stdout
    assert "vs torch" not in r.stdout  # no torch column
    assert "relu" in r.stdout


def test_cli_threads_message():
    r = run_cli("bench", "--ops", "relu", "--sizes", "100", "--repeat", "1", "--min-time", "0",
                "--threads", "2", "--forms", "forward", hide_torch=True)
    assert r.returncode == 0, r.stderr
    setter, where = _bench._pyact_thread_setter()
    if setter is None:
        assert "--threads 2 not applied" in r.stdout
    else:
        assert f"pyact: 2 thread(s) via {where}" in r.stdout


@pytest.mark.parametrize("args", [("--forms", "sideways"), ("--compare", "jax"),
                                  ("--threads", "-1"), ("--repeat", "0")])
def test_cli_bad_bench_arguments(args):
    r = run_cli("bench", "--ops", "relu", *args)
    assert r.returncode != 0
    assert "usage" in r.stderr.lower() or "error" in r.stderr.lower()


# ---- baselines -----------------------------------------------------------------------

def test_every_registry_entry_has_baselines_for_every_form():
    for case in CASES:
        name = case.act.name
        assert callable(getattr(_baselines, name))
        assert callable(getattr(_baselines, name + "_backward"))
        if case.act.kind == "elementwise":
            assert callable(getattr(_baselines, name + "_derivative"))
            assert hasattr(_baselines, name + "_backward_y") == case.act.backward_y, name
        for form in case.forms:
            assert _baselines.candidates(name, form), (name, form)
        for form in set(_bench.FORMS) - set(case.forms):
            assert not _baselines.candidates(name, form), (name, form)


def _moderate_input(act, dtype):
    """Moderate inputs (|x| < 6) kept 0.01 away from the activation's kinks."""
    if act.kind == "axis":
        return np.random.default_rng(1).normal(0.0, 3.0, (6, 7)).astype(dtype)
    x = np.linspace(-5.97, 5.97, 240)
    for k in act.kinks:
        x = x[np.abs(x - k) > 0.01]
    return x.astype(dtype)


def _pyact_result(case, form, x, grad, y):
    name, p = case.act.name, case.params
    if form in ("forward", "inplace"):
        return getattr(pyact, name)(x, **p)
    if form == "derivative":
        return getattr(pyact, name + "_derivative")(x, **p)
    if form == "backward" and case.act.kind != "axis":
        return getattr(pyact, name + "_backward")(grad, x=x, **p)
    return getattr(pyact, name + "_backward")(grad, y=y, **p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_baselines_agree_with_pyact(case, dtype):
    # Loose tolerance, as the baselines are plain working-precision NumPy:
    # relative 1e-4 (float32) / 1e-9 (float64) of each value, plus the same
    # fraction of the sample's largest |value| as an absolute floor (covers
    # cancellation near zero, e.g. grad - exp(y) * sum(grad)).  Every
    # candidate of every form is checked, and must keep the input's dtype.
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    x = _moderate_input(case.act, dtype)
    grad = np.random.default_rng(2).normal(0.0, 1.0, x.shape).astype(dtype)
    y = getattr(pyact, case.act.name)(x, **case.params)
    for form in case.forms:
        want = np.asarray(_pyact_result(case, form, x, grad, y), dtype=np.float64)
        atol = rtol * np.max(np.abs(want))
        for label, impl in _baselines.candidates(case.act.name, form):
            buf = np.empty_like(x)
            with np.errstate(all="ignore"):
                if form == "inplace":
                    got = x.copy()
                    impl(got, **case.params)
                elif form in ("forward", "derivative"):
                    got = impl(x.copy(), buf, **case.params)
                elif form == "backward" and case.act.kind != "axis":
                    got = impl(grad, x, buf, **case.params)
                else:
                    got = impl(grad, y, buf, **case.params)
            if got is None:
                assert _baselines._special is None, (form, label)
                continue
            assert got.dtype == dtype, (form, label, got.dtype)
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol,
                                       err_msg=f"{case.label} {form}: {label}")


# ---- PyTorch (only when installed) ----------------------------------------------------

def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_torch_implementations_agree_with_pyact(case, dtype):
    # The torch column must time the same function: each torch call's result
    # is checked against pyact, as loosely as the baselines for float32 and at
    # relative 1e-7 for float64 (some torch kernels use float constants, e.g.
    # hardsigmoid_backward's 1/6 is off by 3e-8 relative in float64).
    torch = _torch()
    rtol = 1e-4 if dtype == np.float32 else 1e-7
    x = _moderate_input(case.act, dtype)
    arrays = {"x": x, "grad": np.random.default_rng(2).normal(0.0, 1.0, x.shape).astype(dtype),
              "buf": np.empty_like(x), "saved": x.copy(), "scratch": x.copy()}
    arrays["y"] = getattr(pyact, case.act.name)(x, **case.params)
    found = 0
    for form in case.forms:
        want = np.asarray(_pyact_result(case, form, x, arrays["grad"], arrays["y"]), np.float64)
        atol = rtol * np.max(np.abs(want))
        for label, fn, restore in _bench._torch_calls(torch, case, form, arrays):
            found += 1
            if restore is not None:
                restore()
                fn()
                got = arrays["scratch"].copy()
                restore()
            else:
                got = fn().numpy()
            assert got.dtype == dtype, (form, label)
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol,
                                       err_msg=f"{case.label} {form}: {label}")
    assert found >= 1  # at least the forward form


def test_cli_compare_torch_with_torch():
    torch = _torch()
    r = run_cli("bench", "--ops", "sigmoid", "softmax", "--sizes", "100", "--repeat", "1",
                "--min-time", "0", "--forms", "all", "--compare", "torch", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert f"torch {torch.__version__}: 1 thread(s)" in r.stdout
    assert "vs torch" in r.stdout and "vs PyTorch: geometric mean speed-up" in r.stdout
    rows = list(_bench.bench(["sigmoid"], ("float32",), sizes=[50], forms=_bench.FORMS,
                             torch=torch, **FAST))
    by_form = {r["form"]: r for r in rows}
    assert by_form["forward"]["torch_ns"] is not None
    assert by_form["inplace"]["torch_impl"] == "torch.sigmoid_(t)"
    assert by_form["backward_y"]["torch_impl"] == "aten.sigmoid_backward(g, y)"
    assert by_form["derivative"]["torch_ns"] is None  # no such kernel in torch


def test_ab_kernels_tool_runs(capsys):
    # tools/ab_kernels.py, for development: two builds' kernels in one process,
    # called in turn (here the same build twice; only the output is checked,
    # timings are not asserted)
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "ab_kernels.py"
    spec = importlib.util.spec_from_file_location("pyact_ab_kernels", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tree = str(pathlib.Path(pyact.__file__).resolve().parents[1])
    assert tool.main([tree, tree, "--ops", "relu", "softmax", "--sizes", "300",
                      "--rounds", "3", "--dtypes", "float32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[2:]]
    assert [r[:4] for r in rows] == [["relu", "float32", "300", "forward"],
                                     ["relu", "float32", "300", "backward"],
                                     ["softmax", "float32", "3x100", "forward"],
                                     ["softmax", "float32", "3x100", "backward"]]
    for r in rows:
        values = [float(v) for v in r[4:]]
        assert len(values) == 5 and all(v > 0 and np.isfinite(v) for v in values)
