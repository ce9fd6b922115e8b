"""The type stubs (pyact/__init__.pyi) against the real module.

The stub is generated from the registry and must be current; every public
function's stub overloads must have the runtime's parameters (names, kinds,
defaults); the compiled fast paths must take the parameters they declare; and
mypy's own stub checker, mypy.stubtest, must find nothing wrong with the public
API.  These run against whatever pyact is imported: the source tree or an
installed wheel, whose stub is then the one shipped.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyact
from pyact._stubs import stubs

PACKAGE = Path(pyact.__file__).parent
PYI = PACKAGE / "__init__.pyi"
ALLOWLIST = Path(__file__).with_name("stubtest_allowlist.txt")
P = inspect.Parameter


def test_stub_file_is_current():
    assert PYI.read_text(encoding="utf-8") == stubs(), \
        "run `python -m pyact stubs --write pyact/__init__.pyi`"


def test_package_is_typed():
    assert (PACKAGE / "py.typed").is_file()


# ---- the stub's signatures against inspect.signature ------------------------------------

def _stub_functions(text: str) -> dict:
    """{name: [ast.FunctionDef, ...]} of the stub's module-level functions (overloads)."""
    functions = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef):
            functions.setdefault(node.name, []).append(node)
    return functions


def _stub_parameters(node: ast.FunctionDef) -> list:
    """[(name, kind, default)] of a stub function; default is P.empty when required."""
    a = node.args
    params = []
    positional = a.posonlyargs + a.args
    defaults = [P.empty] * (len(positional) - len(a.defaults)) + [
        ast.literal_eval(d) for d in a.defaults]
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        kind = P.POSITIONAL_ONLY if i < len(a.posonlyargs) else P.POSITIONAL_OR_KEYWORD
        params.append((arg.arg, kind, default))
    if a.vararg is not None:
        params.append((a.vararg.arg, P.VAR_POSITIONAL, P.empty))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        params.append((arg.arg, P.KEYWORD_ONLY,
                       P.empty if default is None else ast.literal_eval(default)))
    if a.kwarg is not None:
        params.append((a.kwarg.arg, P.VAR_KEYWORD, P.empty))
    return params


def _runtime_parameters(signature: inspect.Signature) -> list:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def _signature_mismatches(name: str, overloads: list, runtime: list) -> list:
    """What is wrong with the stub overloads of `name` given the runtime parameters.

    Every overload has the runtime's parameters in order, with their kinds.  An
    overload may make an optional parameter required (the out=array overload);
    otherwise a default it gives must be the runtime's, and a parameter the
    runtime requires is required in every overload.  Every optional parameter
    is optional, with the runtime's default, in at least one overload.
    """
    problems = []
    for node in overloads:
        stub = _stub_parameters(node)
        if [(n, k) for n, k, _ in stub] != [(n, k) for n, k, _ in runtime]:
            problems.append(f"{name} (line {node.lineno}): parameters {stub} != runtime {runtime}")
            continue
        for (pname, _, sdefault), (_, _, rdefault) in zip(stub, runtime):
            if sdefault is P.empty:
                continue
            if rdefault is P.empty:
                problems.append(f"{name} (line {node.lineno}): {pname} has a default in the "
                                "stub but is required at run time")
            elif sdefault != rdefault or type(sdefault) is not type(rdefault):
                problems.append(f"{name} (line {node.lineno}): {pname} defaults to "
                                f"{sdefault!r} in the stub, {rdefault!r} at run time")
    for pname, _, rdefault in runtime:
        if rdefault is P.empty:
            continue
        offered = [d for node in overloads for n, _, d in _stub_parameters(node) if n == pname]
        if rdefault not in offered:
            problems.append(f"{name}: no overload gives {pname} its default {rdefault!r}")
    return problems


def _public_callables():
    return {name: getattr(pyact, name) for name in pyact.__all__
            if callable(getattr(pyact, name)) and name != "REGISTRY"}


def test_stub_signatures_match_the_runtime():
    declared = _stub_functions(PYI.read_text(encoding="utf-8"))
    public = _public_callables()
    assert set(declared) == set(public), (
        f"in the stub only: {sorted(set(declared) - set(public))}; "
        f"at run time only: {sorted(set(public) - set(declared))}")
    problems = []
    for name, function in public.items():
        runtime = _runtime_parameters(inspect.signature(function))
        problems += _signature_mismatches(name, declared[name], runtime)
    assert not problems, "\n".join(problems)


def test_signature_check_catches_drift():
    """The comparison above fails on a stub that drifted (a renamed keyword, a
    changed default, a dropped overload default, a parameter the runtime lacks)."""
    text = PYI.read_text(encoding="utf-8")
    runtime = {name: _runtime_parameters(inspect.signature(f))
               for name, f in _public_callables().items()}
    drifts = {
        "leaky_relu_": ("def leaky_relu_(x: _InPlace, *, negative_slope: float = 0.01)",
                        "def leaky_relu_(x: _InPlace, *, negative_slope: float = 0.02)"),
        "softmax_": ("def softmax_(x: _InPlace, *, axis: int = -1)",
                     "def softmax_(x: _InPlace, *, dim: int = -1)"),
        "hardtanh": ("def hardtanh(x: _Scalar, *, out: None = None, min_val: float = -1.0",
                     "def hardtanh(x: _Scalar, *, out: None = None, min_val: float = -2.0"),
        "sigmoid_backward": ("def sigmoid_backward(grad: npt.ArrayLike, *, x: npt.ArrayLike | "
                             "None = None, y: npt.ArrayLike | None = None, out: _InPlace)",
                             "def sigmoid_backward(grad: npt.ArrayLike, *, x: npt.ArrayLike | "
                             "None = None, y: npt.ArrayLike | None = None, out: _InPlace, "
                             "beta: float)"),
    }
    for name, (old, new) in drifts.items():
        assert text.count(old) == 1, (name, old)
        drifted = _stub_functions(text.replace(old, new))
        assert not _signature_mismatches(name, _stub_functions(text)[name], runtime[name])
        assert _signature_mismatches(name, drifted[name], runtime[name]), name


def _code_parameters(function, missing) -> list:
    """[(name, kind, default)] from a function's own code object and defaults,
    ignoring a __signature__ attribute (which the fast paths are given); the
    default `missing` (the fast paths' marker of a required parameter, which
    lets the Python implementation raise the error) reads as none."""
    code = function.__code__
    positional = code.co_varnames[:code.co_argcount]
    keyword = code.co_varnames[code.co_argcount:code.co_argcount + code.co_kwonlyargcount]
    defaults = function.__defaults__ or ()
    kwdefaults = function.__kwdefaults__ or {}
    first_default = len(positional) - len(defaults)
    params = [(n, P.POSITIONAL_OR_KEYWORD,
               defaults[i - first_default] if i >= first_default else P.empty)
              for i, n in enumerate(positional)]
    params += [(n, P.KEYWORD_ONLY, kwdefaults.get(n, P.empty)) for n in keyword]
    return [(n, k, P.empty if d is missing else d) for n, k, d in params]


def test_compiled_fast_paths_take_their_declared_parameters():
    """The fast paths (Cython functions) are given the Python layer's signature for
    help() and inspect; their own parameters must be those."""
    from pyact import _api
    compiled = {name: f for name, f in _api.PUBLIC.items()
                if type(f).__name__ == "cython_function_or_method"}
    assert compiled, "no compiled fast path found"
    for name, function in compiled.items():
        assert (_code_parameters(function, _api._kernels._MISSING)
                == _runtime_parameters(function.__signature__)), name


# ---- mypy.stubtest ------------------------------------------------------------------

def _stubtest(tmp_path: Path, stub_text: str | None = None) -> subprocess.CompletedProcess:
    """Run mypy.stubtest on pyact: the imported package at run time, against a copy
    of its Python sources and stub (stub_text replaces the stub) for mypy."""
    copy = tmp_path / "src" / "pyact"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    if stub_text is not None:
        (copy / "__init__.pyi").write_text(stub_text, encoding="utf-8")
    private = sorted(f"pyact.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE)])
                     if m.name.startswith("_"))
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\n"
        f"mypy_path = {tmp_path / 'src'}\n"
        f"cache_dir = {tmp_path / 'cache'}\n"
        # The private modules are implementation, typed by their own source; only
        # the public API's types are in question here.
        f"[mypy-{','.join(private)}]\n"
        "ignore_errors = True\n")
    env = dict(os.environ)
    # The runtime side must be the imported pyact, not the copy.
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE.parent)] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", str(config),
         "--allowlist", str(ALLOWLIST), "--ignore-unused-allowlist", "--concise", "pyact"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


# Looked up, not imported: stubtest runs in a subprocess, and a compiled mypy that
# does not declare itself free-threading compatible would warn (an error here)
# when imported into this process on free-threaded CPython.
needs_mypy = pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                                reason="mypy is not installed (it is in the test extra)")


@needs_mypy
def test_stubtest(tmp_path):
    r = _stubtest(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_mypy
def test_stubtest_catches_drift(tmp_path):
    text = PYI.read_text(encoding="utf-8")
    drifted = (text
               .replace("def softmax_(x: _InPlace, *, axis: int = -1)",
                        "def softmax_(x: _InPlace, *, dim: int = -1)")
               .replace("def get_num_threads() -> int: ...\n", "")
               .replace('    "get_num_threads",\n', ""))
    assert drifted.count("dim: int") == 1 and "get_num_threads" not in drifted
    r = _stubtest(tmp_path, drifted)
    assert r.returncode != 0
    assert "pyact.softmax_ is inconsistent, stub does not have parameter \"axis\"" in r.stdout
    assert "pyact.get_num_threads is not present in stub" in r.stdout
