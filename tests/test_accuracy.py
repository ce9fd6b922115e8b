"""The accuracy tool (`python -m pyact.accuracy`): the guarantee on a sample of
every kernel, through the same code as the exhaustive run of the README, and
the tool itself (its enumeration, and that it notices an error)."""
import json

import numpy as np
import pytest

import pyact
from pyact import _check, accuracy
from pyact._registry import AXIS, ELEMENTWISE, REGISTRY


def test_every_kernel_within_its_bound_on_a_sample():
    selected = accuracy.cases()
    results = list(accuracy.run(selected, sample=3000, seed=11))
    assert [(r.function, r.dtype, r.form) for r in results] == \
        [(c.label, c.dtype, c.form) for c in selected]
    for r in results:
        assert r.points >= 3000, r
        assert r.ok and r.max_ulp <= r.bound, r
    # every registry function, both dtypes, every form it has
    assert {r.function.split("(")[0] for r in results} == set(REGISTRY)
    for act in ELEMENTWISE:
        forms = {r.form for r in results if r.function.split("(")[0] == act.name}
        assert forms == set(_check.ELEMENTWISE_FORMS[:3]) | ({"backward_y"} if act.backward_y else set())
    for act in AXIS:
        assert {r.form for r in results if r.function == act.name} == {"forward", "backward_y"}


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda a: a.name)
def test_float64_slopes_in_the_subnormal_tails(act):
    # f' and grad * f' where the exponential tails of f' are subnormal (tanh's
    # 4 sigmoid'(2x) rounded before the factor 4 was 2.4 ULP off there, and grad
    # times it 4.4; the random sample rarely lands in these few binades)
    params = act.example_params()
    rng = np.random.default_rng(5)
    x = np.concatenate([np.linspace(lo, hi, 20001) for lo, hi in ((300, 380), (700, 745))])
    x = np.concatenate([x, -x])
    grad = rng.uniform(0.5, 2.0, x.size) * rng.choice([-1.0, 1.0], x.size)
    for form, g in (("derivative", None), ("backward", grad)):
        err = _check.form_errors(act, form, x, params, g)
        assert np.max(err) <= act.ulp_bound(form), (form, x[np.argmax(err)], np.max(err))


@pytest.mark.parametrize("name", ["elu", "selu", "celu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_from_y_where_y_saturates(name, dtype):
    # f'(y) = y + c cancels as y -> -c (selu: c = scale*alpha, added as a double pair
    # whose low part once was a long double remainder valid on x87 only: on aarch64,
    # whose long double has 113 bits, float64 results there were 3e13 ULP off)
    act = REGISTRY[name]
    x = -np.geomspace(1.0, 1e300 if dtype is np.float64 else 1e30, 4001).astype(dtype)
    grad = np.random.default_rng(6).uniform(0.5, 2.0, x.size).astype(dtype)
    err = _check.form_errors(act, "backward_y", x, act.example_params(), grad)
    assert np.max(err) <= act.ulp_bound("backward_y"), (x[np.argmax(err)], np.max(err))


@pytest.mark.parametrize("act", [a for a in AXIS if a.name != "log_softmax"], ids=lambda a: a.name)
def test_float64_vjp_where_y_is_subnormal(act):
    # the vjp's elements whose y is subnormal, in rows with a spread of 700-745
    # between logits: without an FMA, two_prod's error terms underflowed there and
    # such a result was 1.02 ULP off (the last row: found by the accuracy tool's
    # float64 sample).  (The other elements of these rows are -sum of the tiny
    # g_i y_i, whose products round in the subnormal range: see the README,
    # "Accuracy guarantee".)
    rng = np.random.default_rng(8)
    x = rng.normal(0.0, 1.0, (4000, 3))
    x[:, 1] += rng.uniform(700.0, 745.0, 4000) * rng.choice([-1.0, 1.0], 4000)
    x = np.concatenate([x, [[309.33530794, -364.19488282, -1088.95292974]]])
    grad = rng.normal(0.0, 1.0, x.shape)
    grad[-1] = [0.84245806, 0.60721412, 1.14413064]
    err = _check.axis_form_errors(act, "backward_y", x, -1, grad, per="slice")
    y = getattr(pyact, act.name)(x, axis=-1)
    tiny = (y < 2.0**-900) & (y > 0)
    assert tiny.sum() > 4000
    assert np.max(err[tiny]) <= act.ulp_bound("backward_y"), np.max(err[tiny])
    assert np.max(err[-1]) <= act.ulp_bound("backward_y"), err[-1]


def test_exhaustive_tasks_enumerate_the_domain_exactly():
    case = accuracy.Case("softsign", None, "float32", "derivative")
    dom = accuracy.domain(case.act, case.form, "float32")
    tasks = accuracy.tasks(case, exhaustive=True, sample=0, tail=4, chunk=2**26)
    bits = [t for t in tasks if t[0] == "bits"]
    covered = sum(t[2] - t[1] for t in bits)
    assert covered == dom.core_size()
    # the ranges are disjoint, both signs, and each is a run of consecutive floats
    spans = sorted((t[3], t[1], t[2]) for t in bits)
    for (s1, _, e1), (s2, b2, _) in zip(spans, spans[1:]):
        assert s1 != s2 or e1 <= b2
    small = ("bits", dom.bits(0), dom.bits(0) + 5, 1 << 31)
    x = accuracy._elementwise_inputs(case, small)
    np.testing.assert_array_equal(x, -(1 + np.arange(5) * 2.0**-23).astype(np.float32))
    # the low region starts at +-0 and the tails hold every binade outside the core
    assert dom.core_bit_ranges()[0][0] == 0
    tail = [t for t in tasks if t[0] == "tail"]
    assert sorted(e for t in tail for e in t[2]) == dom.tail_binades()
    assert set(dom.tail_binades()).isdisjoint(range(dom.lo, dom.hi))
    assert accuracy.task_points(case, tasks[-1]) == len(tasks[-1][2]) * 2 * (4 + 2)


def test_domains_cover_where_the_functions_are_not_trivial():
    f32 = "float32"
    sig = accuracy.domain(REGISTRY["sigmoid"], "forward", f32)
    assert (sig.low_top, sig.lo, sig.hi) == (-116, -32, 8)   # exp tails end at |x| ~ 104
    assert accuracy.domain(REGISTRY["sigmoid"], "forward", "float64").hi == 11  # ~ 745
    soft = accuracy.domain(REGISTRY["softsign"], "derivative", f32)
    assert 2.0 ** soft.hi > 2.0 ** 74.5   # 1/x**2 underflows at |x| = 2**74.5
    shrink = accuracy.domain(REGISTRY["tanhshrink"], "forward", f32)
    assert 2.0 ** shrink.lo < 2.0 ** (-149 / 3)   # x**3/3 underflows below 2**-49.7


def test_the_tool_notices_an_error(monkeypatch, capsys):
    honest = _check.PUBLIC["sigmoid"]

    def off_by_three_ulps(x, **kw):
        y = np.asarray(honest(x, **kw))
        for _ in range(3):
            y = np.nextafter(y, np.inf, dtype=y.dtype)
        return y

    monkeypatch.setitem(_check.PUBLIC, "sigmoid", off_by_three_ulps)
    (result,) = accuracy.run(accuracy.cases(["sigmoid"], ["float32"], ["forward"]), sample=2000)
    # 3 steps up are at least 3 ULPs of the exact value (6 across a power of two)
    assert not result.ok and result.max_ulp >= 2.9 and result.exceeded >= 0.9 * result.points
    code = accuracy.main(["--functions", "sigmoid", "--dtypes", "float32", "--forms", "forward",
                          "--sample", "500", "--quiet"])
    assert code == 1
    assert "EXCEED" in capsys.readouterr().out


def test_command_line_tables_and_json(tmp_path, capsys):
    path = tmp_path / "acc.json"
    code = accuracy.main(["--functions", "relu", "softmax", "--sample", "2000", "--quiet",
                          "--markdown", "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "| `relu` |" in out and "| `softmax` |" in out and "all within their bounds" in out
    saved = json.loads(path.read_text())
    assert {r["function"] for r in saved["results"]} == {"relu", "softmax"}
    assert saved["config"]["isa"] == pyact.config()["isa"]
    assert accuracy.main(["--from-json", str(path)]) == 0
    assert "relu" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--functions", "nope"], ["--sample", "0"], ["--jobs", "0"]])
def test_command_line_rejects(argv):
    with pytest.raises(SystemExit) as e:
        accuracy.main(argv + ["--quiet"])
    assert e.value.code == 2
