"""``KEY=VALUE`` items from the command line: the one parser every option that takes them uses.

Options that take them: ``--option/-o KEY=VALUE`` (workload options),
``--set KNOB=VALUE`` (``control apply``), ``--config KNOB=VALUE,...``
(``compare``) and ``--knob NAME[=v1,v2]`` (a searched knob).

The syntax is the same for all of them:

- an item is split at its first ``=``, so a value may hold ``=`` itself
  (``-o command='app --level=2'``);
- the key and the value are stripped of surrounding blanks;
- the key must not be empty (``=5`` is refused);
- the value must not be empty (``KEY=`` is refused), and ``=`` is required,
  except where the option takes a bare name (``--knob graph``: its value is None);
- a key given twice is refused: which of the two was meant is a guess;
- a refusal is one line, a :class:`~tuner.errors.ConfigError` (exit 1):
  ``--set takes KNOB=VALUE, not 'gpu'``.

What a value becomes is the caller's choice, made once per kind of option:

- a knob value (``--set``, ``--config``, ``--knob``) goes through
  :func:`knob_value`: an integer, else a number, else the text as written
  (``614400000`` -> int, ``0.5`` -> float, ``script`` -> ``'script'``);
  no booleans, since no knob takes one;
- a list of knob values (``--knob NAME=v1,v2``) goes through
  :func:`knob_values`: comma-separated, or ``;``-separated when the values
  hold commas themselves (``placement=cuda,cpu;cpu,cuda``);
- a workload option (``-o``) stays text: the workload's factory types it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tuner.errors import ConfigError
from tuner.units import parse_list, parse_scalar


def knob_value(text: str) -> int | float | str:
    """One knob value as written: an integer, else a number, else the text itself."""
    return parse_scalar(text.strip())


def knob_values(text: str, what: str) -> tuple:
    """A list of knob values: ``1,2,4``, or ``a,b;c,d`` when the values hold commas (``;`` separates them)."""
    if ";" in text:
        values = tuple(knob_value(v) for v in text.split(";") if v.strip())
        if not values:
            raise ConfigError(f"{what}: empty list")
        return values
    return parse_list(text, knob_value, what)


def split_assignment(item: str, what: str, form: str = "KEY=VALUE", *, bare: bool = False,
                     example: str | None = None) -> tuple[str, str | None]:
    """One ``KEY=VALUE`` item as ``(key, value)``, both stripped; ``(key, None)`` for a bare ``KEY``
    where ``bare`` allows it. ``what`` names the option and ``form`` its syntax in the error."""
    key, sep, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if not key or (sep and not value) or (not sep and not bare):
        hint = f" (e.g. {example})" if example else ""
        raise ConfigError(f"{what} takes {form}, not {item!r}{hint}")
    return key, (value if sep else None)


def parse_assignments(items: Iterable[str], what: str, form: str = "KEY=VALUE", *,
                      value: Callable[[str], Any] = str, bare: bool = False,
                      example: str | None = None) -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict in the order given, each value through ``value``
    (bare keys, where allowed, map to None). See the module docstring for the rules."""
    out: dict[str, Any] = {}
    for item in items:
        key, text = split_assignment(item, what, form, bare=bare, example=example)
        if key in out:
            raise ConfigError(f"{what} {key} is given twice")
        out[key] = None if text is None else value(text)
    return out
