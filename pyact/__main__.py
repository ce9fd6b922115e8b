"""`python -m pyact`: version and build configuration, an accuracy check of
every activation against the reference, and a short speed table against NumPy.

Subcommands: `config`, `check`, `bench`, `catalogue` (see `python -m pyact --help`).
"""
from __future__ import annotations

import argparse
import math
import sys

from ._registry import REGISTRY


def _print_config():
    from ._config import show_config
    print("pyact build and runtime configuration")
    show_config()


def _run_check(samples: int) -> bool:
    from ._check import check
    print(f"\nAccuracy against pyact.reference (max error in ULPs, {samples} inputs "
          "per case incl. special values)")
    rows = {}
    bounds = {}
    for label, dtype, form, err, bound in check(samples):
        rows.setdefault((label, dtype), {})[form] = err
        bounds[(label, dtype, form)] = bound
    forms = ("forward", "derivative", "backward_y")
    print(f"{'activation':<28} {'dtype':<8} " + " ".join(f"{f:>11}" for f in forms)
          + f" {'bound':>6}  ok")
    all_ok = True
    for (label, dtype), errs in rows.items():
        ok = all(e <= bounds[(label, dtype, f)] for f, e in errs.items())
        bound = "/".join(sorted({f"{bounds[(label, dtype, f)]:g}" for f in errs}))
        all_ok &= ok
        cells = " ".join(f"{errs[f]:>11.3g}" if f in errs else f"{'-':>11}" for f in forms)
        print(f"{label:<28} {dtype:<8} {cells} {bound:>6}  "
              f"{'yes' if ok else 'NO'}")
    print("all within bounds" if all_ok else "SOME KERNELS EXCEED THEIR STATED BOUND")
    return all_ok


def _run_bench(names, dtypes, sizes, repeat):
    from ._bench import bench
    print(f"\nSpeed: pyact NAME(x, out=buf) vs the NumPy/SciPy baseline, "
          f"median of {repeat} runs, ns per element")
    print(f"{'activation':<14} {'dtype':<8} {'size':>9} {'pyact':>9} {'numpy':>9} {'speed-up':>9}")
    speedups = []
    for row in bench(names, dtypes, sizes, repeat):
        numpy_ns = f"{row['numpy_ns']:>9.3f}" if row["numpy_ns"] else f"{'n/a':>9}"
        speedup = f"{row['speedup']:>8.2f}x" if row["speedup"] else f"{'n/a':>9}"
        if row["speedup"]:
            speedups.append(row["speedup"])
        print(f"{row['name']:<14} {row['dtype']:<8} {row['size']:>9} "
              f"{row['pyact_ns']:>9.3f} {numpy_ns} {speedup}")
    if speedups:
        geomean = math.exp(sum(map(math.log, speedups)) / len(speedups))
        print(f"geometric mean speed-up over NumPy: {geomean:.2f}x ({len(speedups)} cases)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyact", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("config", help="print version and build configuration")
    check = sub.add_parser("check", help="check every kernel against the reference")
    check.add_argument("--samples", type=int, default=20000)
    bench = sub.add_parser("bench", help="speed table against the NumPy baseline")
    bench.add_argument("--ops", nargs="+", choices=list(REGISTRY), metavar="OP",
                       help="activations to time (default: all)")
    bench.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                       choices=["float32", "float64"])
    bench.add_argument("--sizes", nargs="+", type=int, default=[100_000])
    bench.add_argument("--repeat", type=int, default=5)
    catalogue = sub.add_parser("catalogue", help="print the README's catalogue table")
    catalogue.add_argument("--write", metavar="README", help="update the table in this file")
    args = parser.parse_args(argv)

    if args.command == "catalogue":
        from ._docs import catalogue_markdown, write_catalogue
        if args.write:
            changed = write_catalogue(args.write)
            print(f"{args.write}: catalogue {'updated' if changed else 'already up to date'}")
        else:
            print(catalogue_markdown())
        return 0

    if args.command == "config":
        _print_config()
        return 0
    if args.command == "check":
        return 0 if _run_check(args.samples) else 1
    if args.command == "bench":
        if any(s < 1 for s in args.sizes):
            parser.error("--sizes must be positive")
        _run_bench(args.ops, args.dtypes, args.sizes, args.repeat)
        return 0
    # The main job: everything, briefly.
    _print_config()
    ok = _run_check(5000)
    _run_bench(None, ["float32", "float64"], [100_000], 3)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
