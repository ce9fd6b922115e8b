"""Build of pyact's compiled kernels.

Templates.  Every csrc/NAME.tp is expanded with Tempita into csrc/_NAME (so
kernels.pyx.tp gives _kernels.pyx, a csrc/api.pxi.tp would give _api.pxi).
Each sees the namespace of template_namespace(): `kernels` (one entry per
kernel family of the registry, pyact/_registry.py), `activations` (the
registry's elementwise entries), `registry` (the module) and `build_info`.  Generated files start with an underscore and are not tracked.

ISA levels.  The one kernel source csrc/_kernels.pyx is compiled once per
instruction-set level into pyact._kernels_<level>, through a generated stub
csrc/_kernels_<level>.pyx that includes it: on x86-64 "baseline" (plain
x86-64, no AVX), "avx2" (x86-64-v3: AVX2, FMA, BMI2) and "avx512" (x86-64-v4);
elsewhere "baseline" only.  pyact._dispatch imports the best one the CPU runs;
pyact._runtime (baseline flags) tells it which.  PYACT_BUILD_ISA=baseline,avx2
limits the levels built (quicker development builds).

OpenMP.  Large buffers are split across threads with cython.parallel.prange;
the build compiles and links with -fopenmp when the compiler accepts it and
builds serial loops otherwise (or when PYACT_BUILD_OPENMP=0).

Debug information.  The modules are built with -g0 (Python's CFLAGS usually
carry -g, which makes each kernels module about 13 MB instead of 2.5 MB; the
code is the same either way).  PYACT_BUILD_DEBUG=1 keeps it.

Sanitizers.  PYACT_SANITIZE=address,undefined (any -fsanitize= list the
compiler takes) builds every extension with those sanitizers, at -O1 -g with
frame pointers, undefined behaviour fatal: a debugging build for running the
test suite under AddressSanitizer/UBSan (README, "Development"), never for use.

Templates are expanded and Cython runs only when extensions are built
(build_ext), not for an sdist or for metadata.  The extensions build in
parallel, PYACT_BUILD_JOBS at a time (default: the number of CPUs).  Metadata
lives in pyproject.toml, the sdist's file list in MANIFEST.in.
"""
import importlib
import os
import platform
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import types
from pathlib import Path

import Cython
import numpy
from Cython import Tempita
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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
    # No GIL needed on free-threaded CPython (3.14t): the modules keep no shared
    # mutable state but pyact's thread limit, an int read and written atomically
    # (csrc/runtime.pyx, csrc/parallel.pxi), and module tables filled once at
    # import.  The kernels never touched Python objects without the GIL anyway.
    "freethreading_compatible": True,
}

# -fno-math-errno lets the compiler treat libm as pure and inline sqrt;
# -fno-trapping-math lets it evaluate both sides of a select, which the
# branch-free loops need to vectorise (pyact never enables FP traps).  Never
# -ffast-math: it breaks NaN handling and the rounding the kernels rely on.
# -ffp-contract=off: GCC would otherwise fuse a*b + c into one FMA wherever the
# ISA level has FMA, which changes the rounding that the error-free
# transformations of the kernels (Veltkamp splits, compensated sums) rely on;
# with it FMA is used only where the source asks for it (fma(), and VM_FMA in the
# Horner steps of csrc/vmath.h, which no error-free step depends on).
# -fno-wrapv undoes the -fwrapv of Python's own CFLAGS, under which signed index
# arithmetic may wrap and GCC optimises loops less: softmax and softmin over
# rows of 10 were 1.15-1.5x slower with it (the same source).  Nothing in pyact
# relies on signed wraparound (UBSan checks it: README, Development).
UNIX = sys.platform != "win32"
DEBUG = os.environ.get("PYACT_BUILD_DEBUG", "").strip() not in ("", "0", "no", "false", "off")
EXTRA_COMPILE_ARGS = (["-O3", "-fno-wrapv", "-fno-math-errno", "-fno-trapping-math",
                       "-ffp-contract=off"]
                      + ([] if DEBUG else ["-g0"])
                      if UNIX else [])

ISA_LEVELS = ("baseline", "avx2", "avx512")
# Per level: the flags, then a spelling for compilers without the level names
# (GCC < 11, Clang < 12).  x86-64-v3 = AVX, AVX2, BMI1/2, F16C, FMA, LZCNT, MOVBE
# on top of v2; x86-64-v4 adds AVX512F/BW/CD/DQ/VL.
_V2 = ["-msse3", "-mssse3", "-msse4.1", "-msse4.2", "-mpopcnt", "-mcx16"]
_V3 = _V2 + ["-mavx", "-mavx2", "-mbmi", "-mbmi2", "-mf16c", "-mfma", "-mlzcnt", "-mmovbe"]
_V4 = _V3 + ["-mavx512f", "-mavx512bw", "-mavx512cd", "-mavx512dq", "-mavx512vl"]
X86_ISA_FLAGS = {
    # explicit, so that a distribution's default -march (or CFLAGS) cannot put
    # AVX into the module that must run on every x86-64
    "baseline": (["-march=x86-64", "-mtune=generic"], ["-mno-avx"]),
    "avx2": (["-march=x86-64-v3", "-mtune=generic"], _V3),
    "avx512": (["-march=x86-64-v4", "-mtune=generic"], _V4),
}


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


# ---- the compiler: what it accepts --------------------------------------------------

def _compiler_command():
    """The C compiler as distutils will call it (CC overrides), or None (MSVC)."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC")
    return shlex.split(cc) if cc and UNIX else None


def _compiles(flags, source="int main(void) { return 0; }\n", link=False):
    """Whether the compiler builds `source` with `flags` (without warnings about them)."""
    cc = _compiler_command()
    if cc is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(source)
        cmd = cc + flags + [str(src), "-o", str(Path(tmp) / ("probe" if link else "probe.o"))]
        if not link:
            cmd.insert(len(cc), "-c")
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        output = run.stderr + run.stdout
        return run.returncode == 0 and not any(
            word in output for word in ("unrecognized", "unknown", "unused", "ignored"))


# _kernels.c is one large translation unit; under GCC's default growth limits
# some inline helpers of csrc/vmath.h stay out of line in some loops, which then
# call them per element and do not vectorise (sigmoid float32 9 ns/element
# instead of 1.4).  Raising the limits inlines them all.  GCC spelling; a
# compiler that does not take them builds without.
INLINE_GROWTH = ["--param=large-function-growth=1000", "--param=inline-unit-growth=1000"]

# GCC's jump threading copies the code after each clamp of a kernel once per
# clamped constant, and the vector loop then computes and blends every copy
# (about 15 instructions more per exponential): without it the transcendental
# kernels are 1.14x faster (geometric mean of 44 float32/float64 kernels at 1e5,
# float64 gelu 2.1x) with bit-identical results on every level.  GCC spelling;
# a compiler that does not take them builds without.
NO_JUMP_THREADING = ["-fno-thread-jumps", "-fno-tree-dominator-opts"]

# Hot loops at 64-byte boundaries: the softmax family over rows of 10 ran
# 1.03-1.08x faster so (the elementwise kernels within noise).  GCC and Clang
# spelling; a compiler that does not take them builds without.
ALIGN_CODE = ["-falign-functions=64", "-falign-loops=64"]


def compiler_version():
    """The compiler's own first line of --version (e.g. "gcc (Debian 12.2.0-14) 12.2.0")."""
    cc = _compiler_command()
    if cc is None:
        return "msvc" if sys.platform == "win32" else "unknown"
    try:
        run = subprocess.run(cc + ["--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return cc[0]
    lines = run.stdout.strip().splitlines()
    return lines[0].strip() if run.returncode == 0 and lines else cc[0]


def base_cflags():
    """The flags distutils puts before pyact's own: Python's CFLAGS and $CFLAGS."""
    flags = sysconfig.get_config_var("CFLAGS") or ""
    if os.environ.get("CFLAGS"):
        flags += " " + os.environ["CFLAGS"]
    return " ".join(flags.split())


def _target_is_x86_64():
    # sysconfig.get_platform() honours cross-compilation settings
    # (_PYTHON_HOST_PLATFORM), unlike platform.machine().
    return sysconfig.get_platform().lower().endswith(("x86_64", "amd64"))


def isa_flags():
    """{level: compile flags} for the levels this build makes, lowest first."""
    wanted = os.environ.get("PYACT_BUILD_ISA", "").replace(",", " ").split()
    unknown = set(wanted) - set(ISA_LEVELS)
    if unknown:
        sys.exit(f"PYACT_BUILD_ISA: unknown level(s) {sorted(unknown)}; known: {ISA_LEVELS}")
    if "baseline" not in wanted and wanted:
        wanted.append("baseline")  # the fallback every CPU needs
    levels = {"baseline": []}
    if _target_is_x86_64() and _compiler_command() is not None:
        for level in ISA_LEVELS:
            if wanted and level not in wanted:
                continue
            for flags in X86_ISA_FLAGS[level]:
                if _compiles(flags):
                    levels[level] = flags
                    break
            else:
                print(f"pyact build: the compiler takes no flags for ISA level {level}; "
                      "not built", file=sys.stderr)
    return levels


OPENMP_PROBE = """#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def sanitizer_flags():
    """(compile flags, link flags) for PYACT_SANITIZE, or empty lists."""
    wanted = os.environ.get("PYACT_SANITIZE", "").replace(" ", "").strip(",")
    if not wanted:
        return [], []
    link = [f"-fsanitize={wanted}"]
    # -O1 -g after -O3: line numbers and frames that match the source; the
    # floating-point flags (-ffp-contract=off, ...) stay as they are.
    compile_ = link + ["-fno-omit-frame-pointer", "-O1", "-g"]
    if "undefined" in wanted.split(","):
        compile_.append("-fno-sanitize-recover=undefined")  # a report is a failure
    if not _compiles(compile_, link=True):
        sys.exit(f"PYACT_SANITIZE={wanted}: the compiler cannot build with {' '.join(compile_)}")
    return compile_, link


def openmp_flags():
    """(compile flags, link flags) for OpenMP, or empty lists for a serial build."""
    if os.environ.get("PYACT_BUILD_OPENMP", "1").strip() in ("0", "no", "false", "off"):
        return [], []
    if _compiles(["-fopenmp"], OPENMP_PROBE, link=True):
        return ["-fopenmp"], ["-fopenmp"]
    print("pyact build: the compiler has no OpenMP (-fopenmp); building serial kernels",
          file=sys.stderr)
    return [], []


# ---- sources ------------------------------------------------------------------------

def _write_if_changed(target: Path, text: str):
    # Rewrite only on change so that Cython's own staleness check still works.
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def template_namespace(build_info):
    registry = load_registry()
    kernels = [
        types.SimpleNamespace(name=name, params=[p.name for p in act.real_params],
                              has_y=act.backward_y)
        for act in registry.ELEMENTWISE
        for name in act.kernel_names
    ]
    return {"kernels": kernels, "registry": registry, "activations": registry.ELEMENTWISE,
            "build_info": build_info}


def expand_templates(namespace):
    """csrc/NAME.tp -> csrc/_NAME for every template."""
    for template in sorted(CSRC.glob("*.tp")):
        text = Tempita.sub(template.read_text(), **namespace)
        _write_if_changed(CSRC / ("_" + template.name[: -len(".tp")]), text)


def isa_stub_path(level):
    return CSRC / f"_kernels_{level}.pyx"


def write_isa_stub(level, flags):
    """csrc/_kernels_<level>.pyx: the kernels module for one ISA level."""
    target = isa_stub_path(level)
    _write_if_changed(target, (
        f"# Generated by setup.py (do not edit): pyact._kernels_{level}, the kernels of\n"
        f"# csrc/kernels.pyx.tp compiled for ISA level {level!r}.\n"
        'include "_kernels.pyx"\n\n'
        f"BUILD_INFO[\"isa\"] = {level!r}\n"
        f"BUILD_INFO[\"isa_flags\"] = {' '.join(flags)!r}\n"))
    return target


def remove_stale_modules(levels):
    """In-place builds: drop modules of levels this build skips (and the
    pre-dispatch pyact._kernels), which the dispatcher would otherwise import."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    for path in (HERE / "pyact").glob("_kernels*" + suffix):
        module = path.name.split(".")[0]
        if module == "_kernels" or module[len("_kernels_"):] not in levels:
            print(f"pyact build: removing stale {path.relative_to(HERE)}", file=sys.stderr)
            path.unlink()


ISA = isa_flags()
if UNIX and _compiles(INLINE_GROWTH):
    EXTRA_COMPILE_ARGS += INLINE_GROWTH
if UNIX and _compiles(NO_JUMP_THREADING):
    EXTRA_COMPILE_ARGS += NO_JUMP_THREADING
if UNIX and _compiles(ALIGN_CODE):
    EXTRA_COMPILE_ARGS += ALIGN_CODE
OMP_COMPILE, OMP_LINK = openmp_flags()
SANITIZE_COMPILE, SANITIZE_LINK = sanitizer_flags()
EXTRA_COMPILE_ARGS += SANITIZE_COMPILE

# Largest first, so that parallel workers finish together.
extensions = [
    Extension(
        f"pyact._kernels_{level}",
        [str(isa_stub_path(level).relative_to(HERE))],
        include_dirs=["csrc", numpy.get_include()],
        # C headers the generated C includes: a change rebuilds the modules
        # (Cython tracks only the .pyx/.pxi side)
        depends=[str(p.relative_to(HERE)) for p in sorted(CSRC.glob("*.h"))],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=EXTRA_COMPILE_ARGS + flags + OMP_COMPILE,
        extra_link_args=OMP_LINK + SANITIZE_LINK,
    )
    for level, flags in reversed(ISA.items())
] + [
    Extension(
        "pyact._runtime",
        ["csrc/runtime.pyx"],
        include_dirs=["csrc"],
        extra_compile_args=EXTRA_COMPILE_ARGS + ISA["baseline"] + OMP_COMPILE,
        extra_link_args=OMP_LINK + SANITIZE_LINK,
    )
]

JOBS = int(os.environ.get("PYACT_BUILD_JOBS") or os.cpu_count() or 1)


class BuildExt(build_ext):
    """Generates the sources (templates, ISA stubs), runs Cython, then compiles."""

    def run(self):
        if self.inplace or self.editable_mode:  # the modules land in pyact/
            remove_stale_modules(ISA)
        build_info = {
            "compiler": compiler_version(),
            "cflags": base_cflags(),
            "compile_args": " ".join(EXTRA_COMPILE_ARGS + OMP_COMPILE),
            "cython": Cython.__version__,
            "numpy_build": numpy.__version__,
            "machine": platform.machine(),
        }
        expand_templates(template_namespace(build_info))
        for level, flags in ISA.items():
            write_isa_stub(level, flags)
        generated = cythonize(
            self.extensions, compiler_directives=COMPILER_DIRECTIVES, include_path=["csrc"],
            force=self.force,
            # Cython's worker processes fork; elsewhere they would re-run this file.
            nthreads=JOBS if sys.platform.startswith("linux") else 0)
        # The C files replace the .pyx sources in the extensions setuptools has
        # already set up (cythonize returns copies without setuptools' state).
        c_sources = {ext.name: ext.sources for ext in generated}
        for ext in self.extensions:
            ext.sources = c_sources[ext.name]
        super().run()


setup(
    ext_modules=extensions,
    cmdclass={"build_ext": BuildExt},
    options={"build_ext": {"parallel": JOBS}},
)
