"""Draw every registry activation and its derivative, computed by pyact itself.

    python -m benchmarks.plot_activations [--output docs/activations.png]

Needs matplotlib (the `bench` extra); the README shows the result.
"""
import argparse
import math

import numpy as np

import pyact
from pyact._registry import ELEMENTWISE


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="docs/activations.png")
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = []
    for act in ELEMENTWISE:
        params = act.example_params()
        choices = act.choice_param.choices if act.choice_param else (None,)
        for choice in choices:
            p = dict(params)
            label = act.name
            if choice is not None:
                p[act.choice_param.name] = choice
                label = f"{act.name} ({choice})"
            cases.append((act.name, label, p))

    cols = 6
    rows = math.ceil(len(cases) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows), sharex=True)
    x = np.linspace(-6.0, 6.0, 1201)
    for ax, (name, label, params) in zip(axes.flat, cases):
        ax.axhline(0, color="0.85", lw=0.8)
        ax.axvline(0, color="0.85", lw=0.8)
        ax.plot(x, getattr(pyact, name)(x, **params), lw=1.8, label="f(x)")
        ax.plot(x, getattr(pyact, name + "_derivative")(x, **params), lw=1.2, ls="--",
                label="f′(x)")
        ax.set_title(label, fontsize=9)
        ax.set_ylim(-2.2, 6.2)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(cases):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("pyact activations (solid) and their derivatives (dashed), x in [-6, 6]",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
