"""pyact/__init__.pyi is generated from the registry and must be current."""
import ast
from pathlib import Path

import pyact
from pyact._stubs import stubs

PYI = Path(pyact.__file__).with_name("__init__.pyi")


def test_stub_file_is_current():
    assert PYI.read_text(encoding="utf-8") == stubs(), \
        "run `python -m pyact stubs --write pyact/__init__.pyi`"


def test_stub_covers_every_public_name_with_its_keywords():
    tree = ast.parse(PYI.read_text(encoding="utf-8"))
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            kw = [a.arg for a in node.args.kwonlyargs]
            declared.setdefault(node.name, set()).add(tuple(sorted(kw)))
    for name in pyact.__all__:
        if name in ("__version__", "REGISTRY"):
            continue
        assert name in declared, name
        import inspect
        sig = inspect.signature(getattr(pyact, name))
        kw = tuple(sorted(p.name for p in sig.parameters.values()
                          if p.kind is inspect.Parameter.KEYWORD_ONLY))
        assert declared[name] == {kw}, (name, declared[name], kw)
