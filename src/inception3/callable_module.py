"""Modules that are also the function they are named after: `inception3.train(...)`,
`inception3.evaluate(...)` and `inception3.predict(...)` call the function `train`, `evaluate` or
`predict` of the module (or package) of that name.

A package attribute cannot be a function and a submodule at once: importing `inception3.evaluate`
binds the module to that name, over whatever was there. So the module itself is made callable
(Python's documented way: assigning a `types.ModuleType` subclass to the module's `__class__`), and
`import inception3.train.loop as loop`, `from inception3.evaluate import EvalResult` and dotted
patch targets keep working. The function is looked up at each call, so patching it is seen.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any


class CallableModule(types.ModuleType):
    """A module whose call is a call of its function of the same name (`inception3.predict.predict`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:  # what `help()` and IDEs show for the call
        return inspect.signature(self._function())

    def _function(self) -> Any:
        return getattr(self, self.__name__.rpartition(".")[2])


def make_callable(module_name: str) -> None:
    """Make the module `module_name` (a module being imported passes its `__name__`) callable."""
    sys.modules[module_name].__class__ = CallableModule
