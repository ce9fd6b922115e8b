"""Version, distribution metadata and pyact.config(): one version, numpy the only
dependency, and a configuration report with every field a bug report needs."""
from __future__ import annotations

import importlib.metadata as metadata
import platform
import re
from pathlib import Path

import numpy as np
import pytest

import pyact
from pyact import _dispatch, _runtime, _version

# PEP 440 public versions (the forms pyact uses: release, pre, post, dev)
VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _distribution():
    """The installed distribution that provides pyact, or None (an in-place build)."""
    names = metadata.packages_distributions().get("pyact", [])
    return metadata.distribution(names[0]) if names else None


def test_version_is_one_string_from_version_module():
    assert pyact.__version__ == _version.__version__
    assert VERSION.match(pyact.__version__), pyact.__version__
    assert pyact.config()["version"] == pyact.__version__


def test_installed_metadata_has_that_version_and_only_numpy():
    dist = _distribution()
    if dist is None:
        pytest.skip("pyact is not installed (in-place build): no distribution metadata")
    assert dist.version == pyact.__version__
    # Requirements outside extras (no `extra ==` marker) are what installing pulls in.
    required = [r for r in dist.requires or [] if "extra ==" not in r]
    assert [re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in required] == ["numpy"]


def test_pyproject_takes_the_version_from_the_package():
    if not PYPROJECT.is_file():
        pytest.skip("no pyproject.toml beside the tests")
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "pyact._version.__version__"}


def test_config_reports_build_and_runtime():
    cfg = pyact.config()
    assert list(cfg) == ["version", "python", "platform", "numpy", "numpy_build", "cython",
                         "compiler", "cflags", "compile_args", "isa", "isa_flags",
                         "isa_available", "openmp", "openmp_version", "num_threads",
                         "stream_min_bytes"]
    assert cfg["numpy"] == np.__version__
    for key in ("numpy_build", "cython"):
        assert re.match(r"^\d+\.\d+", cfg[key]), (key, cfg[key])
    # The version line of a compiler names it and has a version number.
    assert re.search(r"\d+\.\d+", cfg["compiler"]) or cfg["compiler"] == "msvc", cfg["compiler"]
    assert isinstance(cfg["cflags"], str) and isinstance(cfg["compile_args"], str)
    if not cfg["compiler"] == "msvc":
        for flag in ("-O3", "-ffp-contract=off", "-fno-math-errno"):
            assert flag in cfg["compile_args"].split(), flag
    assert cfg["isa"] == _dispatch.ISA
    assert cfg["isa_available"] == list(_dispatch.available_levels())
    assert cfg["isa"] in cfg["isa_available"] and "baseline" in cfg["isa_available"]
    assert cfg["openmp"] is (_runtime.openmp_version() > 0)
    if cfg["openmp"]:
        assert "-fopenmp" in cfg["compile_args"].split()
        assert re.match(r"^\d\.\d \(\d{6}\)$", cfg["openmp_version"]), cfg["openmp_version"]
    else:
        assert cfg["openmp_version"].startswith("none")
    assert cfg["num_threads"] == pyact.get_num_threads() >= 1
    # every x86-64 level has streaming stores (SSE2 at least); other targets none
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    assert (cfg["stream_min_bytes"] is not None) is x86
    assert cfg["stream_min_bytes"] is None or cfg["stream_min_bytes"] >= 1 << 20


def test_show_config_prints_every_field(capsys):
    pyact.show_config()
    out = capsys.readouterr().out
    for key, value in pyact.config().items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        assert re.search(rf"^{key}\s+: {re.escape(shown)}$", out, re.M), key
