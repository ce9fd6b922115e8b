"""Runtime ISA dispatch: every built level this CPU runs is accurate, side by side,
PYACT_ISA forces a level, and the baseline module has no AVX in it."""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyact
from pyact import _api, _check, _dispatch, _runtime
from pyact._registry import AXIS, ELEMENTWISE, REGISTRY

from conftest import EXAMPLE_CASES, case_params, check_all_forms

ROOT = Path(__file__).resolve().parent.parent
AVAILABLE = _dispatch.available_levels()


def run_python(code: str, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("PYACT_ISA", "PYACT_NUM_THREADS", "OMP_NUM_THREADS")}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)


def use_level(module, monkeypatch):
    """Point pyact's public functions (pyact.NAME, _api.PUBLIC) at `module`'s kernels
    for one test, compiled fast paths (if any) included."""
    monkeypatch.setattr(_api, "_kernels", module)
    public = _api._build()
    if hasattr(_api, "_with_fast_paths"):
        public = _api._with_fast_paths(public)
    for name, function in public.items():
        monkeypatch.setattr(pyact, name, function)
        monkeypatch.setitem(_api.PUBLIC, name, function)


@pytest.fixture(params=AVAILABLE)
def level_module(request, monkeypatch):
    """pyact's public functions running on the kernels of one ISA level."""
    module = _dispatch.load(request.param)
    use_level(module, monkeypatch)
    return request.param, module


# ---- what was chosen ---------------------------------------------------------------

def test_levels_are_consistent():
    assert _dispatch.LEVELS == ("baseline", "avx2", "avx512")
    assert AVAILABLE[0] == "baseline"
    assert set(AVAILABLE) <= set(_dispatch.built_levels())
    assert set(AVAILABLE) <= set(_dispatch.cpu_levels())
    assert _dispatch.ISA in AVAILABLE
    expected = os.environ.get("PYACT_ISA", "").strip().lower() or AVAILABLE[-1]
    assert _dispatch.ISA == expected
    assert _dispatch.kernels.BUILD_INFO["isa"] == _dispatch.ISA
    assert sys.modules["pyact._kernels"] is _dispatch.kernels is _api._kernels


def test_cpu_levels_follow_the_features():
    features = _runtime.cpu_features()
    levels = _dispatch.cpu_levels()
    if not features:  # not x86-64
        assert levels == ("baseline",)
        return
    v3 = all(features[k] for k in ("avx", "avx2", "fma", "bmi", "bmi2"))
    v4 = v3 and all(features[k] for k in ("avx512f", "avx512bw", "avx512cd",
                                         "avx512dq", "avx512vl"))
    assert ("avx2" in levels) <= v3 and ("avx512" in levels) <= v4
    if sys.platform.startswith("linux"):  # the kernel's view agrees (it checks XCR0 too)
        flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(),
                              re.M).group(1).split())
        for name in ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"):
            assert features[name] == (name in flags), name


def test_config_reports_isa(capsys):
    cfg = pyact.config()
    assert cfg["isa"] == _dispatch.ISA
    assert cfg["isa_available"] == list(AVAILABLE)
    pyact.show_config()
    out = capsys.readouterr().out
    assert re.search(rf"^isa\s+: {cfg['isa']}$", out, re.M)
    assert re.search(r"^isa_available\s+: baseline", out, re.M)


def test_module_metadata(level_module):
    level, module = level_module
    assert module.__name__ == f"pyact._kernels_{level}"
    assert module.BUILD_INFO["isa"] == level
    flags = module.BUILD_INFO["isa_flags"]
    if level != "baseline":
        assert "-march=x86-64-v" in flags or "-mavx2" in flags
    # every level exports the same kernels
    public = {n for n in dir(module) if not n.startswith("_")}
    assert public == {n for n in dir(_dispatch.load("baseline")) if not n.startswith("_")}


# ---- accuracy of every level, side by side -----------------------------------------

@pytest.mark.parametrize("act, params", case_params(EXAMPLE_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_every_level_within_bounds(level_module, act, params, dtype):
    level, _ = level_module
    x = _check.sample(dtype, 4000, seed=3)
    grad = np.random.default_rng(3).normal(0.0, 2.0, x.shape).astype(dtype)
    check_all_forms(act, params, x, grad, label=f"[{level}] {act.name}")


@pytest.mark.parametrize("act", [pytest.param(a, id=a.name) for a in AXIS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_every_level_axis_within_bounds(level_module, act, dtype):
    for form, err in _check.axis_errors(act, dtype, seed=5).items():
        assert err <= act.max_ulp, (level_module[0], act.name, form, err)


def test_check_passes_on_every_level(level_module):
    bad = [row for row in _check.check(2000) if not row[3] <= row[4]]
    assert not bad, (level_module[0], bad)


# ---- PYACT_ISA -----------------------------------------------------------------------

@pytest.mark.parametrize("level", AVAILABLE)
def test_pyact_isa_forces_a_level(level):
    r = run_python("import pyact, sys; c = pyact.config(); "
                   "print(c['isa'], sys.modules['pyact._kernels'].__name__, "
                   "float(pyact.relu(2.0)))", PYACT_ISA=level.upper())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [level, f"pyact._kernels_{level}", "2.0"]


def test_default_is_the_best_available_level():
    r = run_python("import pyact; print(pyact.config()['isa'])")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == AVAILABLE[-1]


@pytest.mark.parametrize("value", ["avx9", "sse2", "x86-64-v3"])
def test_pyact_isa_unknown_level_is_an_import_error(value):
    r = run_python("import pyact", PYACT_ISA=value)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError"), r.stderr
    assert f"PYACT_ISA={value}" in last and "is not an ISA level" in last
    assert "baseline" in last and "avx512" in last  # available and known levels


def test_unsupported_level_is_refused(monkeypatch):
    """A CPU without AVX2: the higher modules are never imported, and forcing one fails."""
    monkeypatch.setattr(_runtime, "cpu_levels", lambda: ("baseline",))
    assert _dispatch.available_levels() == ("baseline",)
    monkeypatch.delenv("PYACT_ISA", raising=False)
    assert _dispatch._choose() == "baseline"
    for level in set(_dispatch.built_levels()) - {"baseline"}:
        with pytest.raises(RuntimeError, match=f"ISA level '{level}' needs instructions"):
            _dispatch.load(level)
        monkeypatch.setenv("PYACT_ISA", level)
        with pytest.raises(ImportError, match=f"PYACT_ISA={level}: .*levels available "
                                              "here: baseline"):
            _dispatch._choose()


# ---- the baseline module runs on any CPU of its architecture ------------------------

@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64")
                    or shutil.which("objdump") is None, reason="needs x86-64 and objdump")
def test_baseline_module_has_no_avx():
    for name in ("pyact._kernels_baseline", "pyact._runtime"):
        path = sys.modules[name].__file__ if name in sys.modules else \
            __import__(name, fromlist=["_"]).__file__
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path],
                             capture_output=True, text=True, check=True).stdout
        mnemonics = {line.split("\t")[1].split()[0] for line in asm.splitlines()
                     if line.count("\t") >= 1 and line.split("\t")[1].strip()}
        vex = sorted(m for m in mnemonics if m.startswith("v"))
        assert not vex, (name, vex[:20])
        assert "%ymm" not in asm and "%zmm" not in asm, name


# The float32 kernels that compute in float on levels with an FMA (vmath.h's vmf_*,
# F32_NATIVE in csrc/kernels.pyx.tp) have stated bounds of their own, some tighter
# than the registry's (exhaustive maxima: 0.97; softsign 0.5, tanh 1.50, silu 1.06 and f' 1.78,
# gelu's tanh form 1.13; softplus' with other parameters 1.03, elu' with alpha = -2.5
# 1.006, sampled): checked on every level (the baseline level rounds the double
# versions) over every 1021st float32 bit pattern (4.2e6 points, both signs,
# subnormal to huge), around the join of vmf_tanh's two pieces at |x| = 0.55 and
# across vmf_silu_slope_times's window around the zero of silu'.
F32_IN_FLOAT = [("sigmoid", {}, ("forward", "derivative"), 1.0),
                ("log_sigmoid", {}, ("forward", "derivative"), 1.0),
                ("tanh", {}, ("forward",), 1.5),
                ("tanh", {}, ("derivative",), 1.0),
                ("silu", {}, ("forward",), 1.06),
                ("silu", {}, ("derivative",), 1.78),
                ("softplus", {}, ("forward", "derivative"), 1.0),
                ("softplus", {"beta": -2.5, "threshold": 0.0}, ("forward", "derivative"), 1.1),
                ("softplus", {"beta": 1e30, "threshold": 5.0}, ("forward",), 1.1),
                ("softplus", {"beta": 3e-30}, ("forward",), 1.0),
                ("gelu", {"approximate": "tanh"}, ("forward",), 1.13),
                ("hardsigmoid", {}, ("forward",), 0.5),
                ("hardswish", {}, ("forward", "derivative"), 0.5000002),
                ("softsign", {}, ("forward",), 0.5),
                ("elu", {"alpha": 1.0}, ("derivative",), 1.0),
                ("elu", {"alpha": -2.5}, ("derivative",), 1.1),
                ("elu", {"alpha": 1e30}, ("derivative",), 1.0),
                ("celu", {"alpha": 0.3}, ("derivative",), 1.0),
                ("celu", {"alpha": -2.5}, ("derivative",), 1.0),
                ("selu", {}, ("derivative",), 1.0)]


@pytest.mark.parametrize("name,params,forms,bound", F32_IN_FLOAT,
                         ids=[n + "-" + p.get("approximate", "") + str(p.get("beta", p.get("alpha", "")))
                              + "-" + "-".join(f)
                              for n, p, f, _ in F32_IN_FLOAT])
def test_float32_kernels_in_float_within_their_bound(level_module, name, params, forms, bound):
    x = np.arange(0, 2**32, 1021, dtype=np.uint64).astype(np.uint32).view(np.float32)
    joins = np.concatenate([np.linspace(s * 0.55 - 1e-3, s * 0.55 + 1e-3, 20001)
                            for s in (-1, 1)]
                           # silu': the window around its zero at -1.2785 and its edges
                           + [np.linspace(-1.2785 - 0.26, -1.2785 + 0.26, 40001)]
                           ).astype(np.float32)
    x = np.concatenate([x[np.isfinite(x)], joins])
    errors = _check.elementwise_errors(REGISTRY[name], np.float32, x, params)
    for form in forms:
        assert errors[form] <= bound, (level_module[0], name, form, errors[form])


@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid", "tanh"])
def test_float32_backward_where_the_derivative_is_subnormal(level_module, name):
    """grad * f'(x) with f' below float32's normal range (found by tools/fuzz.py: the
    float kernels rounded f' alone first, 13 ULP off for tanh at x = 47.3): grad must
    join the product before the rounding, for tiny and huge grads alike (and an
    infinite grad gives inf, not inf * 0 = NaN: also found by the fuzzer)."""
    from conftest import assert_ulp, exact_backward
    act = REGISTRY[name]
    x = np.concatenate([np.linspace(-200.0, 200.0, 40001), [47.319576, -47.319576]]
                       ).astype(np.float32)
    for g in (47.319576, 0.3, -3.7, 1e30, 3e38, 1e-30, 1e-44, np.inf, -np.inf):
        grad = np.full_like(x, g)
        assert_ulp(pyact.__dict__[name + "_backward"](grad, x=x), exact_backward(act, {}, grad, x),
                   np.float32, act.ulp_bound("backward"), x, f"[{level_module[0]}] grad={g}")


def _float64_slope_tails():
    """x where some float64 f' is below the normal range (or 0) though grad f' is
    not: the exponential tails, gelu's, softsign's far out and tanhshrink's near 0."""
    return np.concatenate([np.linspace(-1500.0, 1500.0, 6001), np.linspace(-60.0, -8.0, 2001),
                           np.geomspace(1e140, 1e300, 1001), -np.geomspace(1e140, 1e300, 1001),
                           np.geomspace(1e-300, 1e-140, 1001), -np.geomspace(1e-300, 1e-140, 1001),
                           [773.3, -773.3, 0.0, -0.0]])


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda a: a.name)
def test_float64_backward_where_the_derivative_leaves_the_normal_range(level_module, act):
    """grad * f'(x) in float64 with huge and tiny grads where f'(x) is subnormal, 0 or
    beyond the double range: the product is rounded once all the same (sigmoid at
    x = 773.3 with grad 2^100 was 0 for 1.83e-306; celu with a negative alpha was
    NaN for grad 0 where its f' overflows), also in place."""
    from conftest import assert_ulp, exact_backward
    x = _float64_slope_tails()
    params_list = [act.example_params()]
    if act.name == "celu":
        params_list += [{"alpha": -2.5}, {"alpha": 1e-3}]
    elif act.name == "elu":
        params_list += [{"alpha": 1e300}]
    elif act.name == "gelu":
        params_list += [{"approximate": "tanh"}]
    for params in params_list:
        for g in (2.0 ** 100, -2.0 ** 500, 2.0 ** 1000, 1.7e308, 1.0, -0.75, 2.0 ** -600, 0.0):
            grad = np.full_like(x, g)
            with np.errstate(all="ignore"):
                exact = exact_backward(act, params, grad, x)
            backward = pyact.__dict__[act.name + "_backward"]
            result = backward(grad, x=x, **params)
            assert_ulp(result, exact, np.float64, act.ulp_bound("backward"), x,
                       f"[{level_module[0]}] {act.name} {params} grad={g}")
            # the same in place, over grad and over x
            in_grad, in_x = grad.copy(), x.copy()
            backward(in_grad, x=x, out=in_grad, **params)
            backward(grad, x=in_x, out=in_x, **params)
            np.testing.assert_array_equal(in_grad, result)
            np.testing.assert_array_equal(in_x, result)


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda a: a.name)
def test_backward_on_random_bit_patterns(level_module, act):
    """grad * f'(x) for x and grad drawn as random bit patterns (every binade alike:
    huge and tiny grads, far tails, subnormals, inf, NaN), within the bound everywhere
    (float64 before the long double path for its rare elements: 9e15 ULP off in up
    to 7% of such pairs)."""
    from conftest import assert_ulp, exact_backward
    rng = np.random.default_rng(7)
    params = act.example_params()
    for dtype, bits in ((np.float32, np.uint32), (np.float64, np.uint64)):
        x, grad = rng.integers(0, np.iinfo(bits).max, (2, 1 << 16), dtype=bits,
                               endpoint=True).view(dtype)
        with np.errstate(all="ignore"):
            exact = exact_backward(act, params, grad, x)
        assert_ulp(pyact.__dict__[act.name + "_backward"](grad, x=x, **params), exact,
                   dtype, act.ulp_bound("backward"), x,
                   f"[{level_module[0]}] {act.name} {dtype.__name__}", extra={"grad": grad})


def test_float32_hardswish_backward_with_extreme_grads(level_module):
    """grad * hardswish'(x) joins grad to the float pair of (2x + 3) / 6: huge grads
    must not overflow where the product does not, tiny ones keep their digits, and
    an infinite grad gives inf (NaN only where hardswish' is 0, as in float64)."""
    from conftest import assert_ulp, exact_backward
    act = REGISTRY["hardswish"]
    x = np.concatenate([np.linspace(-4.0, 4.0, 40001),
                        [-3.0, -1.5, 3.0, 0.0, -0.0, 1e-45, -2.9999998]]).astype(np.float32)
    for g in (0.3, -3.7, 3e38, -3e38, 1e30, 1e-30, 1e-44, np.inf, -np.inf):
        grad = np.full_like(x, g)
        assert_ulp(pyact.hardswish_backward(grad, x=x), exact_backward(act, {}, grad, x),
                   np.float32, act.ulp_bound("backward"), x, f"[{level_module[0]}] grad={g}")


def test_float32_elu_family_backward_with_extreme_grads_and_alphas(level_module):
    """grad * alpha e^x for elu and selu, grad * e^(x / alpha) for celu (vmf_exp_times): grad's and alpha's exponents
    are carried apart from their mantissas, so that no product overflows or underflows
    on the way whatever grad and alpha are (subnormal, huge, zero, negative); an
    infinite grad gives inf where float64's alpha e^x is a normal number and NaN where
    it is 0 (x = -inf, or far below zero; between, where it underflows gradually, the
    two roundings to 0 differ by a few ULPs of x, as for the other families), and a
    zero grad NaN where celu's e^(x / alpha) overflows in float64."""
    from conftest import assert_ulp, exact_backward, exact_derivative
    x = np.concatenate([-np.geomspace(1e-45, 3e38, 4001), np.linspace(-120.0, 3.0, 4001),
                        [-np.inf, -0.0, 0.0, 1e-45, np.inf, np.nan]]).astype(np.float32)
    # alpha = 1e300 is inf in float32 (tools/fuzz.py: celu' was NaN there)
    cases = [("elu", {"alpha": a}) for a in (1.0, -2.5, 1e30, -3e38, 1e-30, 3e-39, 0.0, 1e300)]
    cases += [("celu", {"alpha": a})
              for a in (1.0, -2.5, 1e30, -3e38, 1e-30, 3e-39, -1e-45, 1e300, -1e300)]
    cases.append(("selu", {}))
    for name, params in cases:
        act = REGISTRY[name]
        backward = pyact.__dict__[name + "_backward"]
        with np.errstate(over="ignore"):   # the reference's own cast of alpha = 1e300
            slope = np.abs(exact_derivative(act, params, x))
        for g in (0.3, -3.7, 3e38, -3e38, 1e30, 1e-30, 1e-44, 0.0, -0.0, np.inf, -np.inf):
            xs = x
            if np.isinf(g):   # away from float64's gradual underflow of alpha e^x
                xs = x[~((slope > 0) & (slope < np.finfo(np.float64).tiny))]
            grad = np.full_like(xs, g)
            with np.errstate(over="ignore"):
                exact = exact_backward(act, params, grad, xs)
            assert_ulp(backward(grad, x=xs, **params), exact,
                       np.float32, act.ulp_bound("backward"), xs,
                       f"[{level_module[0]}] {name} {params} grad={g}")


def test_float32_softplus_threshold_with_tiny_beta(level_module):
    """softplus's test beta x > threshold where beta x is 0 or subnormal (tools/fuzz.py):
    beta = 5e-324 is 0 in float32, so beta x is exactly 0, not an underflowed product
    with a sign, and a threshold of 0 is not passed; beta = threshold = 2e-42 is passed
    at x = 1.0000342 though beta x rounds to beta (the float kernels took the wrong
    branch in both: x for softplus's inf, and inf for x)."""
    from conftest import check_all_forms
    x = np.array([1.2573022, -1.0, 0.0, -0.0, 3.0, 1e-45, -1e-45, 1.0000342, 1.0, 0.99999994],
                 np.float32)
    grad = np.full_like(x, 0.75)
    for beta, threshold in ((5e-324, 0.0), (5e-324, -1.0), (5e-324, 20.0),
                            (2.008793856460362e-42, 2.008793856460362e-42)):
        check_all_forms(REGISTRY["softplus"], {"beta": beta, "threshold": threshold}, x, grad,
                        f"[{level_module[0]}] beta={beta} threshold={threshold}")


def test_float32_shrinks_with_lambd_beyond_float32(level_module):
    """lambd = 1e300 is inf in float32, so the band holds every float, +-inf included:
    softshrink(+-inf) is 0 there, not inf - inf (tools/fuzz.py: it was NaN), and
    hardshrink's forms agree; NaN stays NaN."""
    from conftest import check_all_forms
    x = np.array([np.inf, -np.inf, np.nan, 3e38, -3e38, 1.5, -0.0, 0.0, 1e-45], np.float32)
    grad = np.full_like(x, 0.75)
    for name in ("softshrink", "hardshrink"):
        for lambd in (1e300, 3.5e38, 3.4e38):
            with np.errstate(over="ignore"):   # the reference's own cast of lambd
                check_all_forms(REGISTRY[name], {"lambd": lambd}, x, grad,
                                f"[{level_module[0]}] {name} lambd={lambd}")


def test_float32_gelu_backward_far_below_zero_with_huge_grads(level_module):
    """grad * gelu'(x) for x below -20, where gelu' is below 2^-278 (tools/fuzz.py: with
    gelu' clamped at -15.5, grad = 1e30 at x = -inf gave -4e-22): 0 for every finite
    grad; an infinite one gives inf where gelu' is a normal float64 and NaN where it
    is 0 (x = -inf); between, where float64's gelu' underflows gradually, the two
    roundings to 0 differ by a few ULPs of x (known, as for the other families)."""
    from conftest import assert_ulp, exact_backward, exact_derivative
    act = REGISTRY["gelu"]
    x = np.concatenate([-np.geomspace(15.0, 3e38, 2001), [-np.inf, -19.7, -19.8, -20.0]]
                       ).astype(np.float32)
    slope = np.abs(exact_derivative(act, {}, x))
    for g in (1e30, 3e38, -3e38, 1.5e7, np.inf):
        if np.isinf(g):
            x = x[(slope >= np.finfo(np.float64).tiny) | np.isinf(x)]
            slope = np.abs(exact_derivative(act, {}, x))
        grad = np.full_like(x, g)
        assert_ulp(pyact.gelu_backward(grad, x=x), exact_backward(act, {}, grad, x),
                   np.float32, act.ulp_bound("backward"), x, f"[{level_module[0]}] grad={g}")


def test_softplus_backward_from_y_at_the_linear_boundary(level_module):
    """softplus' from y switches to 1 where beta y passes softplus(threshold): beta y
    within a double ULP of that boundary took the wrong branch in float64 (derivative
    1 instead of 1/2; tools/fuzz.py: beta = 1.642578125, y = 0.42198734416966943, and
    beta = -1.192092896e-07, y = -5814539.981621913); the limit is now a pair."""
    from conftest import assert_ulp, exact_backward_y
    from pyact import reference
    act = REGISTRY["softplus"]
    cases = [(1.642578125, 0.0, [0.42198734416966943]),
             (-1.192092896e-07, 0.0, [-5814539.981621913])]
    for beta in (1.642578125, 0.7, -2.5, 3.0):
        for threshold in (0.0, 1.5, -4.0, 20.0):
            limit = float(reference.softplus(np.array([threshold]), 1.0, np.inf)[0]) / beta
            cases.append((beta, threshold, np.nextafter(limit, np.array([-np.inf, np.inf])).tolist()
                          + [limit]))
    for dt in (np.float64, np.float32):
        for beta, threshold, ys in cases:
            y = np.array(ys, dt)
            y = np.concatenate([y, np.nextafter(y, dt(np.inf)), np.nextafter(y, dt(-np.inf))])
            grad = np.ones_like(y)
            params = {"beta": beta, "threshold": threshold}
            assert_ulp(pyact.softplus_backward(grad, y=y, **params),
                       exact_backward_y(act, params, grad, y), dt, act.ulp_bound("backward"),
                       y, f"[{level_module[0]}] {dt.__name__} beta={beta} threshold={threshold}")
