"""Check the contents of an sdist and a wheel of pyact-kernels (used by .ci/run).

    python tools/check_dist.py dist/pyact_kernels-*.tar.gz dist/pyact_kernels-*.whl

sdist: every file git tracks (run from a git checkout) but CI's own files, and
nothing generated (csrc/_*, C files, compiled modules).  wheel: the package's
Python files, the stub and py.typed, the compiled modules (every ISA level on
x86-64), no Cython or C sources, numpy as the only requirement, and the version
of pyact/_version.py.  Prints the sizes; exits 1 on any problem.
"""
from __future__ import annotations

import argparse
import email.parser
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
# Tracked files an sdist has no use for: CI's script and git's own settings.
NOT_IN_SDIST = (".ci/", ".gitignore")
GENERATED = re.compile(r"(^csrc/_|\.c$|\.so$|\.pyd$|__pycache__)")
SOURCES = (".pyx", ".pxd", ".pxi", ".tp", ".c", ".h")


def version() -> str:
    text = (ROOT / "pyact" / "_version.py").read_text(encoding="utf-8")
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def check_sdist(path: Path) -> list:
    problems = []
    with tarfile.open(path) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    top = {n.split("/", 1)[0] for n in names}
    if len(top) != 1:
        return [f"sdist: more than one top-level folder: {sorted(top)}"]
    files = {n.split("/", 1)[1] for n in names}
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return ["sdist: run from a git checkout (git ls-files gives the expected files)"]
    expected = {f for f in tracked if not f.startswith(NOT_IN_SDIST)}
    problems += [f"sdist lacks {f}" for f in sorted(expected - files)]
    problems += [f"sdist has generated file {f}" for f in sorted(files) if GENERATED.search(f)]
    if "PKG-INFO" not in files:
        problems.append("sdist has no PKG-INFO")
    print(f"sdist {path.name}: {len(files)} files, {path.stat().st_size / 1e3:.0f} kB")
    return problems


def check_wheel(path: Path) -> list:
    problems = []
    with zipfile.ZipFile(path) as whl:
        infos = whl.infolist()
        names = [i.filename for i in infos if not i.filename.endswith("/")]
        dist_info = [n for n in names if re.match(r"[^/]+\.dist-info/METADATA$", n)]
        meta = email.parser.Parser().parsestr(whl.read(dist_info[0]).decode()) if dist_info \
            else None
        wheel_info = whl.read(dist_info[0].replace("METADATA", "WHEEL")).decode() \
            if dist_info else ""
    if meta is None:
        return [f"wheel {path.name}: no METADATA"]
    package = [PurePosixPath(n) for n in names if n.startswith("pyact/")]
    package_names = {p.name for p in package}
    for required in ("__init__.py", "__init__.pyi", "py.typed", "_version.py", "reference.py"):
        if required not in package_names:
            problems.append(f"wheel lacks pyact/{required}")
    source_py = {p.name for p in (ROOT / "pyact").glob("*.py")}
    problems += [f"wheel lacks pyact/{n}" for n in sorted(source_py - package_names)]
    modules = {p.name.split(".")[0] for p in package if p.suffix in (".so", ".pyd")}
    levels = ["baseline"]
    if re.search(r"x86_64|amd64", path.name):
        levels += ["avx2", "avx512"]
    for module in ["_runtime"] + [f"_kernels_{level}" for level in levels]:
        if module not in modules:
            problems.append(f"wheel lacks compiled module pyact.{module}")
    problems += [f"wheel has source file {n}" for n in names if n.endswith(SOURCES)]
    problems += [f"wheel has a file outside pyact/ and its metadata: {n}" for n in names
                 if not re.match(r"(pyact/|pyact_kernels(-[^/]+\.dist-info|\.libs)/)", n)]
    if meta["Name"] != "pyact-kernels":
        problems.append(f"wheel metadata names {meta['Name']!r}, not 'pyact-kernels'")
    if meta["Version"] != version():
        problems.append(f"wheel version {meta['Version']} != pyact/_version.py {version()}")
    required = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    if [re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in required] != ["numpy"]:
        problems.append(f"wheel requires {required}, not numpy alone")
    if "Root-Is-Purelib: false" not in wheel_info:
        problems.append("wheel is marked pure Python")
    print(f"wheel {path.name}: {path.stat().st_size / 1e6:.2f} MB")
    for info in infos:
        if info.filename.endswith((".so", ".pyd")) or re.search(r"\.libs/.", info.filename):
            print(f"  {info.filename}: {info.file_size / 1e6:.2f} MB "
                  f"({info.compress_size / 1e6:.2f} MB compressed)")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="sdist (.tar.gz) and/or wheel (.whl)")
    args = parser.parse_args(argv)
    problems = []
    for path in args.files:
        if path.name.endswith(".tar.gz"):
            problems += check_sdist(path)
        elif path.suffix == ".whl":
            problems += check_wheel(path)
        else:
            problems.append(f"{path}: neither an sdist (.tar.gz) nor a wheel (.whl)")
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
