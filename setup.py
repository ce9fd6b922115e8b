"""Build of pyact's compiled kernels.

Every csrc/NAME.EXT.tp template is expanded from the registry
(pyact/_registry.py) into csrc/_NAME.EXT: kernels.pyx.tp gives the loops
(csrc/_kernels.pyx, which includes the rest) and api_fast.pxi.tp the compiled
fast paths of the public functions.  Cython compiles csrc/_kernels.pyx into the
extension module pyact._kernels.  Metadata lives in pyproject.toml.
"""
import importlib
import platform
import sys
import sysconfig
import types
from pathlib import Path

import Cython
import numpy
from Cython import Tempita
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent.resolve()
CSRC = HERE / "csrc"

# Chosen on purpose: no bounds or wraparound checks and C division in the
# kernels (the Python layer validates shapes), Python 3 semantics, and
# signatures embedded so that help() shows them.
COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "embedsignature": True,
}

# -fno-math-errno lets the compiler treat libm as pure and inline sqrt;
# -fno-trapping-math lets it evaluate both sides of a select, which the
# branch-free loops need to vectorise (pyact never enables FP traps).  Never
# -ffast-math: it breaks NaN handling and the rounding the kernels rely on.
EXTRA_COMPILE_ARGS = [] if sys.platform == "win32" else ["-O3", "-fno-math-errno", "-fno-trapping-math"]


def load_registry():
    """Import pyact._registry without running pyact/__init__.py (which needs the
    extension this build is about to make)."""
    saved = {name: mod for name, mod in sys.modules.items() if name.split(".")[0] == "pyact"}
    for name in saved:
        del sys.modules[name]
    package = types.ModuleType("pyact")
    package.__path__ = [str(HERE / "pyact")]
    sys.modules["pyact"] = package
    try:
        return importlib.import_module("pyact._registry")
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "pyact"]:
            del sys.modules[name]
        sys.modules.update(saved)


def expand_templates():
    """Expand every csrc/NAME.EXT.tp into csrc/_NAME.EXT from the registry."""
    registry = load_registry()
    kernels = [
        types.SimpleNamespace(name=name, params=[p.name for p in act.real_params],
                              has_y=act.backward_y)
        for act in registry.ELEMENTWISE
        for name in act.kernel_names
    ]
    build_info = {
        "compiler": (sysconfig.get_config_var("CC") or "msvc").split()[0],
        "compile_args": " ".join(EXTRA_COMPILE_ARGS),
        "cython": Cython.__version__,
        "numpy_build": numpy.__version__,
        "machine": platform.machine(),
    }
    for template in sorted(CSRC.glob("*.tp")):
        text = Tempita.sub(template.read_text(), kernels=kernels, build_info=build_info,
                           activations=registry.ELEMENTWISE)
        target = CSRC / ("_" + template.name[:-len(".tp")])
        # Rewrite only on change so that Cython's own staleness check still works.
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


expand_templates()

extensions = [
    Extension(
        "pyact._kernels",
        ["csrc/_kernels.pyx"],
        include_dirs=["csrc", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=EXTRA_COMPILE_ARGS,
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=COMPILER_DIRECTIVES,
                            include_path=["csrc"]))
