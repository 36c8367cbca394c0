"""What both chat adapters do with a job and its result, in one place.

The buttons under a result (Re-roll, Stronger, Weaker, Save as preset) need the request
that made it, so adapters remember recent ones here; Stronger and Weaker move the
method's strength-like option one step along its declared range. The plain-text pieces
of progress and result messages are shared too; each adapter adds its own markup.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Iterable, TypeVar

from engine.methods import get_method

if TYPE_CHECKING:
    from engine.events import ResultMeta
    from engine.options import Option
    from engine.request import StyleRequest

NUDGED_OPTIONS = ("strength", "alpha", "style_weight")  # what Stronger/Weaker move, first found

Place = TypeVar("Place")


@dataclass(frozen=True)
class Remembered(Generic[Place]):
    """The request as it ran, how it ran, and the adapter's own note of where and for whom."""

    request: "StyleRequest"
    meta: "ResultMeta"
    place: Place

    @property
    def nbytes(self) -> int:
        return len(self.request.content.data) + sum(len(s.data) for s in self.request.styles)


class ResultMemory:
    """Recent results' requests, bounded by count and bytes; the oldest are forgotten first."""

    def __init__(self, max_items: int = 200, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Remembered] = OrderedDict()
        self._bytes = 0

    def put(self, job_id: str, item: Remembered) -> None:
        self._items[job_id] = item
        self._bytes += item.nbytes
        while self._items and (len(self._items) > self.max_items or self._bytes > self.max_bytes):
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes

    def get(self, job_id: str) -> Remembered | None:
        return self._items.get(job_id)


def nudged_option(method_name: str) -> "Option | None":
    """The option Stronger/Weaker move for this method, if it has one."""
    method = get_method(method_name)
    return next((method.options[n] for n in NUDGED_OPTIONS if n in method.options), None)


def nudge(option: "Option", current: Any, direction: int) -> Any:
    """One click of Stronger (+1) or Weaker (-1): a fifth of the range, or x/÷ √10 on log scales."""
    value = option.default if current is None else current
    if value is None:
        value = option.min if option.min is not None else 0
    if option.log_scale:
        new = float(value) * (10 ** (0.5 * direction)) if value else 10.0 ** direction
    elif option.min is not None and option.max is not None:
        step = (option.max - option.min) / 5
        if option.step:
            step = max(option.step, round(step / option.step) * option.step)
        new = value + direction * step
    else:
        new = value + direction * (option.step or max(abs(value) * 0.25, 0.1))
    if option.min is not None:
        new = max(option.min, new)
    if option.max is not None:
        new = min(option.max, new)
    return int(round(new)) if option.type == "int" else round(float(new), 6)


def progress_bar(fraction: float, width: int = 12) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "▰" * filled + "▱" * (width - filled)


def value_text(value: Any) -> str:
    """An option value as a person would type it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return f'"{text}"' if " " in text else text


def format_options(options: dict[str, Any]) -> str:
    return " ".join(f"{k}={value_text(v)}" for k, v in options.items()) or "defaults"


def changed_options(method_options: Iterable["Option"], options: dict[str, Any]) -> dict[str, Any]:
    """The options that differ from the method's defaults, seed aside: what the user chose."""
    return {o.name: options[o.name] for o in method_options
            if o.name != "seed" and o.name in options and options[o.name] != o.default}
