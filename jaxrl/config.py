"""The one config idiom: a frozen dataclass per algorithm whose fields are marked.

* `static(default)`: shapes, sizes, names, flags; part of the compiled program.
* `sweepable(default, lo=..., hi=...)`: a float read at run time from `hparams`; a sweep over it is
  one compiled program. `Algorithm.hparams` is `hparams(cfg)`, derived from these marks.

Experiment configs nest the algorithm's config as a ConfigDict (`to_config_dict`), so every field
is a flag (`--config.algo.beta=0.5`), and get one sweep entry per sweepable field
(`sweep_config`, `--config.sweep.beta="(0,0.25,0.5)"`). `validate` checks the fields and every
swept value against the same bounds, before anything is compiled or written, with one-line
errors naming the field and the value.

Example:
    @dataclasses.dataclass(frozen=True)
    class MyConfig:
        hidden: tuple[int, ...] = static((64, 64))
        lr: float = sweepable(3e-4, lo=0.0, lo_open=True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import ml_collections
from ml_collections import config_dict

T = TypeVar("T")
_KIND = "jaxrl_kind"


def static(default: Any, *, check: Callable[[Any], str | None] | None = None,
           doc: str = "") -> Any:
    """A field fixed at compile time. `check(value)` returns an error text or None."""
    kw = {"default_factory": lambda: default} if isinstance(default, list | dict) else {
        "default": default}
    return dataclasses.field(metadata={_KIND: "static", "check": check, "doc": doc}, **kw)


def sweepable(default: float, *, lo: float | None = None, hi: float | None = None,
              lo_open: bool = False, hi_open: bool = False, doc: str = "") -> Any:
    """A float hyperparameter read at run time (sweepable); bounds are checked for the default,
    overrides and every swept value. `lo_open`/`hi_open` exclude the bound itself."""
    return dataclasses.field(default=float(default), metadata={
        _KIND: "sweepable", "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open,
        "doc": doc})


def _fields(cls_or_obj: Any) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls_or_obj)


def sweepable_names(cls_or_obj: Any) -> tuple[str, ...]:
    """Names of the sweepable fields, in declaration order."""
    return tuple(f.name for f in _fields(cls_or_obj) if f.metadata.get(_KIND) == "sweepable")


def hparams(cfg: Any) -> dict[str, float]:
    """`{name: value}` of the sweepable fields: the `Algorithm.hparams` of `cfg`."""
    return {n: float(getattr(cfg, n)) for n in sweepable_names(cfg)}


def _range_text(m: Mapping[str, Any]) -> str:
    lo, hi = m["lo"], m["hi"]
    a = "(" if m["lo_open"] or lo is None else "["
    b = ")" if m["hi_open"] or hi is None else "]"
    return f"{a}{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}{b}"


def check_value(field: dataclasses.Field, value: Any, where: str) -> None:
    """Raise a one-line ValueError if `value` is not allowed for `field`."""
    m = field.metadata
    if m.get(_KIND) == "sweepable":
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a number, got {value!r}") from None
        lo, hi = m["lo"], m["hi"]
        bad = not math.isfinite(x)
        if lo is not None:
            bad |= x <= lo if m["lo_open"] else x < lo
        if hi is not None:
            bad |= x >= hi if m["hi_open"] else x > hi
        if bad:
            raise ValueError(f"{where} must be finite and in {_range_text(m)}, got {value!r}")
    elif m.get(_KIND) == "static" and m.get("check") is not None:
        err = m["check"](value)
        if err:
            raise ValueError(f"{where} {err}, got {value!r}")


def validate(cfg: Any, grid: Mapping[str, Any] | None = None, prefix: str = "config.algo",
             sweep_prefix: str = "config.sweep") -> None:
    """Check every field of `cfg` and every swept value in `grid` (one-line ValueErrors)."""
    by_name = {f.name: f for f in _fields(cfg)}
    for f in by_name.values():
        check_value(f, getattr(cfg, f.name), f"{prefix}.{f.name}")
    for name, values in (grid or {}).items():
        f = by_name.get(name)
        if f is None or f.metadata.get(_KIND) != "sweepable":
            raise ValueError(f"{sweep_prefix}.{name} is not a sweepable field of "
                             f"{type(cfg).__name__}; sweepable: {list(sweepable_names(cfg))}")
        for v in values:
            check_value(f, v, f"{sweep_prefix}.{name}")


def to_config_dict(cfg: Any) -> ml_collections.ConfigDict:
    """The dataclass as a ConfigDict (tuples kept), so each field is a command-line flag."""
    return ml_collections.ConfigDict({f.name: getattr(cfg, f.name) for f in _fields(cfg)})


def from_config(cls: type[T], c: Any) -> T:
    """An instance of `cls` from a ConfigDict/dict/instance; unknown keys are refused."""
    if isinstance(c, cls):
        return c
    d = c.to_dict() if isinstance(c, ml_collections.ConfigDict) else dict(c)
    names = {f.name for f in _fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} for {cls.__name__}")
    kw = {}
    for f in _fields(cls):
        if f.name in d:
            v = d[f.name]
            kw[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kw)


def sweep_config(cls: Any) -> ml_collections.ConfigDict:
    """`config.sweep`: one tuple placeholder per sweepable field (unset = not swept)."""
    return ml_collections.ConfigDict(
        {n: config_dict.placeholder(tuple) for n in sweepable_names(cls)})
