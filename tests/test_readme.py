"""The README's examples run as written."""
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def test_usage_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        namespace = {}
        exec(compile(block, str(README), "exec"), namespace)
    # the softmax example: masked entries get probability exactly 0, rows sum to 1
    p = namespace["p"]
    assert p[0, 2] == 0.0
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-15)
