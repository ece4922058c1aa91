"""Deferred imports of the plotting modules gymnax loads at import time and uses only to render.

`import gymnax` imports every gymnax environment, and two of them (`misc.pong`, `bsuite.catch`)
import `seaborn` and `matplotlib.pyplot` at module level for their `render` methods. Measured on
the 2-core CPU: of `python -c "import jaxrl.envs"`'s ~3.8 s, seaborn (with scipy.stats, which it
pulls in) takes ~0.9 s and pyplot ~0.4 s, paid by every script and every subprocess a test starts,
though no jaxrl code renders with them.

`defer(name)` puts a stand-in module under `sys.modules[name]` when `name` is not imported yet;
its first attribute access imports the real module, puts it back in `sys.modules` and forwards
to it, so `sns.color_palette(...)` and a later `import seaborn` behave as usual. The stand-in
answers its own dunder attributes (`__spec__`, `__name__`), so `import seaborn` does not load
it; the standard library's `importlib.util.LazyLoader` loads on the `__spec__` access that every
`import` statement makes, which would undo the deferral.
Importing this module defers `GYMNAX_RENDER_MODULES`; `jaxrl.envs` imports it before gymnax.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

__all__ = ["GYMNAX_RENDER_MODULES", "defer"]

# What gymnax imports at module level for `render` only (jaxrl.envs imports this module first).
GYMNAX_RENDER_MODULES = ("seaborn", "matplotlib.pyplot")


class _Deferred(types.ModuleType):
    """A module whose real contents are imported on first attribute access."""

    def _load(self) -> types.ModuleType:
        real = self.__dict__.get("_deferred_real")
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__["_deferred_real"] = real
        return real

    def __getattr__(self, attr: str) -> Any:  # only called for names the stand-in lacks
        return getattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())


def defer(name: str) -> bool:
    """Stand in for top-level or sub-module `name` until first use; False (and nothing done)
    when it is already imported or not installed. A sub-module's parent is imported now."""
    if name in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    stand_in = _Deferred(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in
    parent, _, child = name.rpartition(".")
    if parent:  # as the real import would: `matplotlib.pyplot` is an attribute of matplotlib
        setattr(sys.modules[parent], child, stand_in)
    return True


for _name in GYMNAX_RENDER_MODULES:
    defer(_name)
