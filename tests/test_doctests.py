"""Every docstring example in the package runs (STYLE: examples are executed)."""
import doctest
import importlib
import pkgutil

import pytest

import cogviz

MODULES = sorted(m.name for m in pkgutil.walk_packages(cogviz.__path__, "cogviz.")
                 if not m.name.endswith("__main__") and ".toy.weights" not in m.name)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_some_examples_exist():
    total = sum(doctest.testmod(importlib.import_module(n)).attempted for n in MODULES)
    assert total >= 8
