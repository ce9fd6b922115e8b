"""Which elementwise kernel loops GCC vectorises, per ISA level.

Recompiles the generated csrc/_kernels_<level>.c with the flags the built module
pyact._kernels_<level> records (pyact.config()'s compile_args and isa_flags) plus
-fopt-info-vec-optimized, and maps every vectorised loop back to the kernel
block function (_<family>_<form>_block, float32 and float64) it sits in.  A
block without a vectorised loop runs element by element: a select GCC could not
if-convert, or a helper left out of line.

    python tools/vec_report.py [avx512|avx2|baseline ...]   (after an in-place build)

Without arguments: the level pyact chose on this CPU (its flags from
pyact.config(), no other level's module imported).  Exits with 1 when some
block is not vectorised; CI runs it.
"""
import importlib
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the in-place build, not an installed pyact
BLOCK = re.compile(r"^static void __pyx_fuse_(\d)__pyx_f_5pyact_\d+_kernels_\w+?__(\w+)_block\(.*\{$")


def block_ranges(source):
    """{(family_form, dtype): (first line, last line)} of the block functions."""
    ranges, current = {}, None
    for lineno, line in enumerate(source.splitlines(), 1):
        m = BLOCK.match(line)
        if m:
            current = (m.group(2), "float32" if m.group(1) == "0" else "float64")
            ranges[current] = [lineno, None]
        elif current and line == "}":
            ranges[current][1] = lineno
            current = None
    return ranges


def vectorised_lines(level, source_path):
    import pyact
    config = pyact.config()
    # importing another level's module could run instructions this CPU lacks
    build = config if level == config["isa"] else \
        importlib.import_module(f"pyact._kernels_{level}").BUILD_INFO
    # -fno-ipa-icf: GCC folds identical functions into one (relu's backward from x and
    # from y), whose loops would then be reported under one block's lines only
    flags = (shlex.split(build["compile_args"]) + shlex.split(build["isa_flags"])
             + ["-fno-ipa-icf"])
    with tempfile.TemporaryDirectory() as tmp:
        info = Path(tmp) / "vec.txt"
        subprocess.run(["gcc", *flags, "-fPIC", "-I" + str(ROOT / "csrc"),
                        "-I" + sysconfig.get_paths()["include"], "-I" + numpy.get_include(),
                        "-c", str(source_path), "-o", str(Path(tmp) / "k.o"),
                        f"-fopt-info-vec-optimized={info}"], check=True)
        pattern = re.escape(source_path.name) + r":(\d+):\d+: optimized: loop vectorized"
        return {int(m.group(1)) for m in re.finditer(pattern, info.read_text())}


def report(level):
    source_path = ROOT / "csrc" / f"_kernels_{level}.c"
    vec = vectorised_lines(level, source_path)
    ranges = block_ranges(source_path.read_text())
    missing = sorted(f"{name} {dtype}" for (name, dtype), (lo, hi) in ranges.items()
                     if not any(lo <= line <= hi for line in vec))
    print(f"{level}: {len(ranges) - len(missing)} of {len(ranges)} elementwise kernel loops vectorised")
    for name in missing:
        print("  not vectorised:", name)
    return not missing


if __name__ == "__main__":
    import pyact
    levels = sys.argv[1:] or [pyact.config()["isa"]]
    sys.exit(0 if all([report(level) for level in levels]) else 1)
