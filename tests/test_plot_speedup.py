"""benchmarks/plot_speedup.py: reading `pyact bench --json` output and asv results,
the speed-ups and the headline table, on small synthetic inputs (nothing is
timed).  The chart itself needs matplotlib (the `bench` extra).

The script lives in the source tree, not in the installed package, so these
tests are skipped where the tests run without it (e.g. against a wheel).
"""
from __future__ import annotations

import importlib.util
import itertools
import json
import math
import pathlib
import sys

import numpy as np
import pytest

import pyact
from pyact import _bench

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "plot_speedup.py"
if not SCRIPT.exists():
    pytest.skip("benchmarks/plot_speedup.py is not here (tests run outside the source tree)",
                allow_module_level=True)
_spec = importlib.util.spec_from_file_location("_plot_speedup_under_test", SCRIPT)
ps = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ps  # dataclasses look their module up there
_spec.loader.exec_module(ps)


def bench_row(op, dtype, shape, form, pyact_ns, numpy_ns, torch_ns=None):
    return {"op": op, "name": op.split("(")[0], "params": {}, "dtype": dtype,
            "shape": list(shape), "size": math.prod(shape), "form": form,
            "pyact_call": "", "pyact_ns": pyact_ns, "numpy_impl": "x", "numpy_ns": numpy_ns,
            "numpy_candidates": {}, "speedup_numpy": None, "torch_impl": None,
            "torch_ns": torch_ns, "speedup_torch": None}


BENCH = {
    "meta": {"config": {"version": "9.9", "isa": "avx2", "numpy": "2.0.0", "python": "3.12.1"},
             "machine": {"cpu": "Test CPU", "logical_cpus": 4, "os": "TestOS 1"},
             "threads": 1, "torch": "2.5.0"},
    "rows": [
        bench_row("relu", "float32", (100_000,), "forward", 1.0, 4.0, 2.0),
        bench_row("relu", "float32", (1000,), "forward", 2.0, 3.0, 8.0),
        bench_row("relu", "float64", (100_000,), "forward", 2.0, 1.0, None),
        bench_row("gelu", "float32", (100_000,), "forward", 4.0, 32.0, 8.0),
        bench_row("gelu", "float64", (100_000,), "forward", 8.0, None, 16.0),
        bench_row("relu", "float32", (100_000,), "backward", 1.0, 2.0, None),
        bench_row("softmax", "float32", (1000, 1000), "forward", 2.0, 5.0, 4.0),
        bench_row("softmax", "float32", (100_000, 10), "forward", 1.0, 9.0, 1.0),
        bench_row("softmax", "float64", (10, 100_000), "forward", 1.0, 3.0, 1.5),
    ],
}


@pytest.fixture
def bench_json(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(BENCH))
    return path


def by_key(rows):
    return {(r.op, r.dtype, r.form): r for r in rows}


def test_pyact_bench_json(bench_json):
    measured = ps.load(bench_json)
    assert len(measured.timings) == 9 + 8 + 7  # pyact, numpy (one missing), torch (7 given)
    assert measured.about == ("Test CPU (4 logical CPUs), TestOS 1; pyact 9.9 (avx2, 1 thread), "
                              "NumPy 2.0.0, Python 3.12.1; PyTorch 2.5.0, 1 thread")
    rows = ps.speedups(measured.timings, ["forward"])
    got = by_key(rows)
    # the requested size (1e5), not 1e3; missing baselines are None
    assert got[("relu", "float32", "forward")].shape == (100_000,)
    assert got[("relu", "float32", "forward")].vs_numpy == 4.0
    assert got[("relu", "float32", "forward")].vs_torch == 2.0
    assert got[("relu", "float64", "forward")].vs_numpy == 0.5
    assert got[("relu", "float64", "forward")].vs_torch is None
    assert got[("gelu", "float64", "forward")].vs_numpy is None
    # the softmax family at the requested shape, else the nearest element count
    assert got[("softmax", "float32", "forward")].shape == (1000, 1000)
    assert got[("softmax", "float32", "forward")].vs_numpy == 2.5
    assert got[("softmax", "float64", "forward")].shape == (10, 100_000)
    # order: forms as asked, then dtype, then the source's (registry) order
    assert [(r.op, r.dtype) for r in rows] == [
        ("relu", "float32"), ("gelu", "float32"), ("softmax", "float32"),
        ("relu", "float64"), ("gelu", "float64"), ("softmax", "float64")]
    small = by_key(ps.speedups(measured.timings, ["forward"], size=1000,
                               axis_shape=(100_000, 10)))
    assert small[("relu", "float32", "forward")].vs_torch == 4.0
    assert small[("softmax", "float32", "forward")].vs_numpy == 9.0
    # a form without data gives no rows; without forms, every form present
    assert ps.speedups(measured.timings, ["derivative"]) == []
    assert {r.form for r in ps.speedups(measured.timings)} == {"forward", "backward"}


def test_rows_in_registry_order():
    # asv lists the softmax-family benchmarks first (alphabetical classes); the
    # chart and table keep pyact's registry order, unknown names last
    timings = [ps.Timing(op, "float32", (10,), "forward", impl, 1.0)
               for op in ("softmax", "zz_custom", "gelu(approximate=tanh)", "relu", "gelu")
               for impl in ("pyact", "numpy")]
    assert [r.op for r in ps.speedups(timings, size=10)] == [
        "relu", "gelu", "gelu(approximate=tanh)", "softmax", "zz_custom"]


def test_markdown_table(bench_json):
    rows = ps.speedups(ps.load(bench_json).timings, ["forward", "backward"])
    lines = ps.markdown_table(rows).splitlines()
    assert lines[0] == ("| form | dtype | vs NumPy: geometric mean | slowest … fastest |"
                        " vs PyTorch: geometric mean | slowest … fastest |")
    # float32 forward: vs NumPy 4, 8, 2.5 -> geometric mean 80 ** (1/3) = 4.31
    assert lines[2] == ("| forward, out of place | float32 | **4.31×** (3 activations) | "
                        "2.50× (softmax) … 8.00× (gelu) | **2.00×** (3 activations) | "
                        "2.00× (relu) … 2.00× (relu) |")
    # float64 forward: vs NumPy only relu (0.5) and softmax (3); vs torch gelu 2, softmax 1.5
    assert lines[3] == ("| forward, out of place | float64 | **1.22×** (2 activations) | "
                        "0.50× (relu) … 3.00× (softmax) | **1.73×** (2 activations) | "
                        "1.50× (softmax) … 2.00× (gelu) |")
    assert lines[4] == ("| fused backward | float32 | **2.00×** (1 activation) | "
                        "2.00× (relu) … 2.00× (relu) | n/a | n/a |")
    assert len(lines) == 5
    assert ps.sizes_text(rows) == "100,000 elements; softmax family 1,000×1,000, 10×100,000"


def test_markdown_table_without_torch():
    rows = [ps.Speedup("relu", "float32", "inplace", (10,), 12.5, None)]
    assert ps.markdown_table(rows).splitlines() == [
        "| form | dtype | vs NumPy: geometric mean | slowest … fastest |",
        "|---|---|---|---|",
        "| forward, in place | float32 | **12.5×** (1 activation) | 12.5× (relu) … 12.5× (relu) |"]


def asv_results(commit, result_by_impl, started_at=1000, threads=True):
    """An asv results file (format version 2) with one OutOfPlace and one Threads
    benchmark; result_by_impl: {(op, dtype, size, impl): seconds}."""
    ops, dtypes, sizes, impls = ["relu", "softmax"], ["float32"], [1000, (10, 100)], \
        ["pyact", "numpy", "torch"]
    results = [result_by_impl.get(key) for key in
               itertools.product(ops, dtypes, sizes, impls)]
    columns = ["result", "params", "version", "started_at", "duration"]
    data = {
        "commit_hash": commit, "env_name": "virtualenv-py3.11-scipy", "date": 1,
        "params": {"machine": "box", "cpu": "Box CPU", "num_cpu": "8", "os": "BoxOS"},
        "python": "3.11", "requirements": {}, "env_vars": {}, "result_columns": columns,
        "results": {
            "bench_activations.OutOfPlace.time_forward": [
                results, [[repr(v) for v in p] for p in (ops, dtypes, sizes, impls)],
                "abc", started_at, 1.0],
        },
        "durations": {}, "version": 2,
    }
    if threads:
        data["results"]["bench_activations.Threads.time_forward"] = [
            [0.1, 0.05], [["'relu'"], ["'float32'"], ["'1'", "'all'"]], "def", started_at, 1.0]
    return data


def test_asv_results(tmp_path):
    seconds = {("relu", "float32", 1000, "pyact"): 1e-6, ("relu", "float32", 1000, "numpy"): 3e-6,
               ("relu", "float32", 1000, "torch"): float("nan"),  # failed
               ("softmax", "float32", (10, 100), "pyact"): 2e-6,
               ("softmax", "float32", (10, 100), "numpy"): 5e-6}
    machine = tmp_path / "results" / "box"
    machine.mkdir(parents=True)
    (machine / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    (tmp_path / "results" / "benchmarks.json").write_text("{}")
    old = asv_results("aaaa1111", {k: v * 2 for k, v in seconds.items()}, started_at=10)
    new = asv_results("bbbb2222", seconds, started_at=20)
    (machine / "aaaa1111-virtualenv-py3.11-scipy.json").write_text(json.dumps(old))
    (machine / "bbbb2222-virtualenv-py3.11-scipy.json").write_text(json.dumps(new))

    measured = ps.load(tmp_path / "results")  # the newest results file
    assert "commit bbbb2222" in measured.about and "Box CPU (8 CPUs), BoxOS" in measured.about
    timings = {(t.op, t.shape, t.impl): t.ns for t in measured.timings}
    # seconds per call -> ns per element; skipped/failed entries and Threads left out
    assert timings == pytest.approx({("relu", (1000,), "pyact"): 1.0,
                                     ("relu", (1000,), "numpy"): 3.0,
                                     ("softmax", (10, 100), "pyact"): 2.0,
                                     ("softmax", (10, 100), "numpy"): 5.0})
    assert {t.form for t in measured.timings} == {"forward"}
    rows = by_key(ps.speedups(measured.timings, ["forward"], size=1000))
    assert rows[("relu", "float32", "forward")].vs_numpy == pytest.approx(3.0)
    assert rows[("relu", "float32", "forward")].vs_torch is None
    assert rows[("softmax", "float32", "forward")].vs_numpy == pytest.approx(2.5)

    older = ps.load(tmp_path / "results", commit="aaaa")
    assert "commit aaaa1111" in older.about
    with pytest.raises(FileNotFoundError):
        ps.load(tmp_path / "results", commit="cccc")
    with pytest.raises(ValueError):
        ps.load(machine / "machine.json")


def test_real_bench_rows_round_trip(tmp_path):
    # rows as `python -m pyact bench --json` writes them (tiny, untimed sizes)
    rows = list(_bench.bench(["relu", "softmax"], ("float32",), sizes=[200],
                             forms=("forward", "derivative"), repeat=1, min_time=0.0))
    path = tmp_path / "bench.json"
    _bench.write_json(path, rows, {"config": pyact.config(), "machine": _bench.machine(),
                                   "threads": 1, "torch": None})
    measured = ps.load(path)
    got = by_key(ps.speedups(measured.timings, ["forward", "derivative"], size=200,
                             axis_shape=(2, 100)))
    assert set(got) == {("relu", "float32", "forward"), ("softmax", "float32", "forward"),
                        ("relu", "float32", "derivative")}
    for row in rows:
        s = got[(row["op"], row["dtype"], row["form"])]
        assert s.shape == tuple(row["shape"])
        if row["pyact_ns"] > 0:
            assert s.vs_numpy == pytest.approx(row["numpy_ns"] / row["pyact_ns"])
    assert measured.about.startswith(_bench.machine()["cpu"])


def test_readme_block(bench_json):
    measured = ps.load(bench_json)
    rows = ps.speedups(measured.timings, ["forward"])
    block = ps.readme_block(measured, rows)
    text = f"# x\n\nbefore\n{ps.BEGIN_MARK}\nold table\n{ps.END_MARK}\nafter\n"
    new = ps.replace_readme_block(text, block)
    assert new.startswith("# x\n\nbefore\n" + ps.BEGIN_MARK)
    assert new.endswith(ps.END_MARK + "\nafter\n")
    assert "old table" not in new and ps.markdown_table(rows) in new
    assert "measured on Test CPU (4 logical CPUs)" in new
    assert ps.replace_readme_block(new, block) == new
    with pytest.raises(ValueError):
        ps.replace_readme_block("no markers\n", block)


def test_chart_and_command_line(bench_json, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{ps.BEGIN_MARK}\n{ps.END_MARK}\n")
    png = tmp_path / "speedup.png"
    assert ps.main([str(bench_json), "--output", str(png), "--readme", str(readme)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread
    image = imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert np.ptp(image[..., :3]) > 0.5  # not blank
    out = capsys.readouterr().out
    assert "| forward, out of place | float32 |" in out and f"wrote {png}" in out
    assert "speed-up table updated" in out
    assert "| fused backward | float32 |" in readme.read_text()
