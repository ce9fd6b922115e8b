"""A/B timing of two builds of pyact's kernels in one process.

    python tools/ab_kernels.py TREE_A TREE_B [--isa LEVEL] [--ops NAME ...]
                               [--dtypes ...] [--sizes N ...] [--shapes RxC ...]
                               [--forms ...] [--rounds N]

TREE_A and TREE_B are checkouts with the extension built in place (e.g. a
`git worktree` of the commit before a change, and the work tree).  Both trees'
kernels module of one ISA level is loaded into this process, and the calls of
`python -m pyact bench` (same cases, arrays and forms: pyact/_bench.py) go to
the compiled public functions of one module and then the other, alternating
call by call.  On a shared machine whose speed drifts by tens of percent from
second to second, paired calls see the same conditions, so their ratio is
steady where separate runs are not (an A/A comparison gives 1.00 +- 0.02).

Prints, per case, the minimum and median ns per element of each build and the
median of the per-pair ratios B/A (< 1: B is faster).  The Python layer and
pyact._runtime are those of the pyact on sys.path (run it from TREE_B, or with
PYTHONPATH set); only the compiled kernels differ.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import statistics
import sys
import time

import numpy as np


def load_kernels(tree: str, level: str):
    """The kernels module of `level` built in `tree`, loaded under its own name."""
    paths = glob.glob(os.path.join(tree, "pyact", f"_kernels_{level}.*.so"))
    if not paths:
        sys.exit(f"ab_kernels: no pyact/_kernels_{level}.*.so in {tree} (build it in place)")
    name = f"_kernels_{level}"
    spec = importlib.util.spec_from_file_location(name, paths[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_functions(module, slow: dict) -> dict:
    """{public name: the module's compiled fast path}, with pyact's Python
    implementations as its fallbacks (uncommon arguments)."""
    module.install_fallbacks(slow)
    return {name: getattr(module, "api_" + name) for name in slow}


def paired(fn_a, fn_b, rounds: int):
    """Seconds per call of fn_a and fn_b, alternating (the order flips each round)."""
    times = ([], [])
    fn_a()
    fn_b()
    for r in range(rounds):
        order = ((0, fn_a), (1, fn_b)) if r % 2 == 0 else ((1, fn_b), (0, fn_a))
        for side, fn in order:
            t0 = time.perf_counter()
            fn()
            times[side].append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree_a")
    parser.add_argument("tree_b")
    parser.add_argument("--isa", default=None, help="ISA level (default: the one pyact picks)")
    parser.add_argument("--ops", nargs="+", default=None, metavar="NAME")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--sizes", nargs="+", type=int, default=None, metavar="N")
    parser.add_argument("--shapes", nargs="+", default=None, metavar="RxC",
                        help="shapes for the softmax family instead of those of --sizes "
                             "(e.g. 1000x97: rows of 97)")
    parser.add_argument("--forms", nargs="+", default=["forward", "backward"])
    parser.add_argument("--rounds", type=int, default=40, help="paired calls per case")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import pyact
    from pyact import _api, _bench
    pyact.set_num_threads(args.threads)
    level = args.isa or pyact.config()["isa"]
    slow = _api._build()
    funcs = [public_functions(load_kernels(tree, level), slow)
             for tree in (args.tree_a, args.tree_b)]
    print(f"A = {args.tree_a}, B = {args.tree_b}; {level}, {args.threads} thread(s), "
          f"{args.rounds} paired calls per case; ns per element")
    print(f"{'case':44} {'A min':>8} {'A med':>8} {'B min':>8} {'B med':>8} {'B/A':>6}")
    rng = np.random.default_rng(0)
    for case in _bench.cases(args.ops):
        for dtype in args.dtypes:
            shapes = _bench.shapes_for(case.act, args.sizes)
            if args.shapes and case.act.kind == "axis":
                shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
            for shape in shapes:
                arrays = _bench._arrays(case, np.dtype(dtype), shape, rng)
                size = arrays["x"].size
                for form in args.forms:
                    if form not in case.forms or form == "inplace":
                        continue
                    calls = [_bench._pyact_call(case, form, arrays, f)[1] for f in funcs]
                    with np.errstate(all="ignore"):
                        ta, tb = paired(*calls, args.rounds)
                    ratio = statistics.median(b / a for a, b in zip(ta, tb))
                    ns = [f(t) / size * 1e9 for t in (ta, tb) for f in (min, statistics.median)]
                    label = f"{case.label} {dtype} {'x'.join(map(str, shape))} {form}"
                    print(f"{label:44} {ns[0]:8.3f} {ns[1]:8.3f} {ns[2]:8.3f} {ns[3]:8.3f} "
                          f"{ratio:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
