"""Which kernel loops GCC vectorises: compile the generated csrc/_kernels.c with
-fopt-info-vec-optimized for one -march and map each vectorised loop to its kernel.

    python tools/vec_report.py x86-64-v4      (after a build, from the repo root)
"""
import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy

march = sys.argv[1] if len(sys.argv) > 1 else "x86-64-v4"
src = Path("csrc/_kernels.c")
with tempfile.TemporaryDirectory() as tmp:
    info = Path(tmp) / "vec.txt"
    subprocess.run(["gcc", "-O3", "-fno-math-errno", "-fno-trapping-math", f"-march={march}",
                    "-fPIC", "-Icsrc", "-I" + sysconfig.get_paths()["include"],
                    "-I" + numpy.get_include(), "-c", str(src), "-o", str(Path(tmp) / "k.o"),
                    f"-fopt-info-vec-optimized={info}"], check=True)
    vec_lines = {int(m.group(1)) for m in re.finditer(r"_kernels\.c:(\d+):\d+: optimized: loop vectorized",
                                                     info.read_text())}
# kernel loops: "for (__pyx_t_N = 0; ..." inside __pyx_pf_..._<fuse>_<name>_<form>
func = None
loops = {}
for lineno, line in enumerate(src.read_text().splitlines(), 1):
    m = re.match(r"static PyObject \*__pyx_pf_5pyact_8_kernels_\d+(\w+?)_(forward|derivative|backward_y|backward)\(.*\{$", line)
    if m:
        func = [None, m.group(1), m.group(2)]
        continue
    m = re.search(r'__Pyx_RefNannySetupContext\("__pyx_fuse_(\d)', line)
    if func and m and func[0] is None:
        func[0] = "float32" if m.group(1) == "0" else "float64"
        func = tuple(func)
        continue
    if func and re.match(r"\s*for \(__pyx_t_\d+ = 0; __pyx_t_\d+ < __pyx_t_\d+; __pyx_t_\d+\+=1\)", line):
        loops.setdefault(func, []).append(lineno)
bad = []
for (dtype, name, form), lines in sorted(loops.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
    ok = any(l in vec_lines for l in lines)
    if not ok:
        bad.append(f"{name}_{form} {dtype}")
print(f"{march}: {len(loops) - len(bad)} of {len(loops)} kernel loops vectorised")
for b in bad:
    print("  not vectorised:", b)
