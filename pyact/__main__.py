"""`python -m pyact`: version and build configuration, an accuracy check of
every activation against the reference, and a short speed table against NumPy.

Subcommands: `config`, `check`, `bench`, `catalogue`, `stubs` (see `python -m pyact --help`).
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


def _run_bench(names, dtypes, sizes, repeat, forms=("forward",), compare=(), threads=1,
               min_time=None, json_path=None):
    """Print the speed table; return the rows."""
    from . import _bench
    min_time = _bench.DEFAULT_MIN_TIME if min_time is None else min_time
    torch = None
    notes = []
    if "torch" in compare:
        torch = _bench.import_torch()
        if torch is None:
            notes.append(_bench.TORCH_MISSING)
    notes += _bench.set_threads(threads, torch)
    print(f"\nSpeed: pyact against the fastest NumPy/SciPy baseline"
          f"{' and PyTorch' if torch is not None else ''}; ns per element, "
          f"median of {repeat} auto-scaled runs, interleaved; speed-up = other time / pyact time")
    for note in notes:
        print(note)
    with_torch = torch is not None
    print(_bench.format_header(with_torch))
    rows = []
    for row in _bench.bench(names, dtypes, sizes, repeat, forms=forms, torch=torch,
                            min_time=min_time):
        rows.append(row)
        print(_bench.format_row(row, with_torch), flush=True)
    for line in _bench.summary_lines(rows, with_torch):
        print(line)
    if json_path:
        from . import _config
        meta = {"config": _config.config(), "machine": _bench.machine(),
                "threads": threads, "repeat": repeat,
                "min_time": min_time, "notes": notes,
                "torch": torch.__version__ if torch is not None else None}
        _bench.write_json(json_path, rows, meta)
        print(f"wrote {len(rows)} rows to {json_path}")
    return rows


BENCH_EPILOG = """\
what is timed (pyact side; see pyact/_bench.py):
  forward     NAME(x, out=buf)
  inplace     NAME_(x), x restored from a saved copy before each call, untimed
  derivative  NAME_derivative(x, out=buf)
  backward    NAME_backward(grad, x=x, out=buf)   (softmax family: y=y)
  backward_y  NAME_backward(grad, y=y, out=buf)   (where the registry allows it)
The NumPy column is the fastest of the candidates in pyact/_baselines.py;
the torch column uses torch.nn.functional / torch.ops.aten (n/a where torch
has no kernel for the form).  Without --sizes, elementwise functions use
100000 elements and the softmax family the shapes 1000x1000, 100000x10 and
10x100000 (along the last axis); with --sizes N, the softmax family uses
(N // 100) x 100 (or 1 x N for N < 100).

default run: about a minute (every op, float32 and float64, forward and
backward); `python -m pyact` (no subcommand) times the forward form only.
full grid (every op x dtype x size x form; about 30 minutes with the current
kernels, nearly all of it at 1e7 elements; --repeat 3 shortens it by a third):
  python -m pyact bench --sizes 1000 100000 10000000 --forms all --compare torch --json grid.json
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyact", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("config", help="print version and build configuration")
    check = sub.add_parser("check", help="check every kernel against the reference")
    check.add_argument("--samples", type=int, default=20000)
    from ._bench import DEFAULT_FORMS, DEFAULT_MIN_TIME, DEFAULT_REPEAT, FORMS
    bench = sub.add_parser("bench", help="speed table against NumPy/SciPy (and PyTorch)",
                           epilog=BENCH_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--ops", nargs="+", choices=list(REGISTRY), metavar="OP",
                       help="activations to time (default: all)")
    bench.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                       choices=["float32", "float64"])
    bench.add_argument("--sizes", nargs="+", type=int, default=None, metavar="N",
                       help="element counts (default: 100000; softmax family: see below)")
    bench.add_argument("--forms", nargs="+", default=list(DEFAULT_FORMS),
                       choices=list(FORMS) + ["all"], metavar="FORM",
                       help=f"{', '.join(FORMS)} or all (default: {' '.join(DEFAULT_FORMS)})")
    bench.add_argument("--compare", nargs="+", default=[], choices=["torch"],
                       help="also time PyTorch (if installed)")
    bench.add_argument("--threads", type=int, default=1, metavar="N",
                       help="threads for pyact and torch (default 1); 0 leaves the "
                            "libraries' defaults")
    bench.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                       help=f"timed rounds (one batch of each implementation), median reported "
                            f"(default {DEFAULT_REPEAT})")
    bench.add_argument("--min-time", type=float, default=DEFAULT_MIN_TIME, metavar="SECONDS",
                       help=f"length of one batch (default {DEFAULT_MIN_TIME})")
    bench.add_argument("--json", metavar="PATH", help="also write all rows to this JSON file")
    catalogue = sub.add_parser("catalogue", help="print the README's catalogue table")
    catalogue.add_argument("--write", metavar="README", help="update the table in this file")
    stubs = sub.add_parser("stubs", help="print the type stubs of the public API")
    stubs.add_argument("--write", metavar="PYI", help="update this .pyi file")
    args = parser.parse_args(argv)

    if args.command == "stubs":
        from ._stubs import stubs as make_stubs, write_stubs
        if args.write:
            changed = write_stubs(args.write)
            print(f"{args.write}: stubs {'updated' if changed else 'already up to date'}")
        else:
            print(make_stubs(), end="")
        return 0
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
        if args.sizes is not None and any(s < 1 for s in args.sizes):
            parser.error("--sizes must be positive")
        if args.threads < 0:
            parser.error("--threads must be >= 0")
        if args.repeat < 1 or args.min_time < 0:
            parser.error("--repeat must be >= 1 and --min-time >= 0")
        forms = FORMS if "all" in args.forms else tuple(dict.fromkeys(args.forms))
        _run_bench(args.ops, args.dtypes, args.sizes, args.repeat, forms, args.compare,
                   args.threads or None, args.min_time, args.json)
        return 0
    # The main job: everything, briefly (forward only, 1e5 elements).
    _print_config()
    ok = _run_check(5000)
    _run_bench(None, ["float32", "float64"], [100_000], 3, min_time=0.005)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
