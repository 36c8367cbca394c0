"""Method options, declared once and used everywhere.

Each method lists its options (name, type, default, range, help). That one declaration
drives validation here, the CLI flags, the chat commands' choices and parsing, and the
playground's sliders, so a range or default is never written twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

from .errors import OptionError

OptionType = Literal["float", "int", "bool", "str", "choice"]

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def parse_bool(raw: Any) -> bool:
    """The one reading of a yes/no word (options, form fields, chat flags); ValueError otherwise."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(raw)


@dataclass(frozen=True)
class Option:
    name: str  # snake_case; CLI flag is --name-with-dashes, chat uses the name as is
    type: OptionType
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    log_scale: bool = False  # sliders move in powers of ten (gatys style_weight)
    step: float | None = None  # slider step hint

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def describe_range(self) -> str:
        if self.type == "choice" and self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type == "bool":
            return "true or false"
        if self.min is not None and self.max is not None:
            return f"{_fmt(self.min)}..{_fmt(self.max)}"
        if self.min is not None:
            return f">= {_fmt(self.min)}"
        if self.max is not None:
            return f"<= {_fmt(self.max)}"
        return "any " + ("number" if self.type in ("float", "int") else "text")

    def parse(self, raw: Any) -> Any:
        """Convert ``raw`` (a chat string, a CLI value or a typed value) and check its range."""
        if raw is None:
            return self.default
        try:
            value = self._convert(raw)
        except (TypeError, ValueError):
            raise OptionError(
                f"Option '{self.name}' must be {self._type_word()}, got {raw!r} "
                f"(allowed: {self.describe_range()})."
            ) from None
        self._check_range(value)
        return value

    def _type_word(self) -> str:
        return {"float": "a number", "int": "a whole number", "bool": "true or false",
                "str": "text", "choice": "one of the listed choices"}[self.type]

    def _convert(self, raw: Any) -> Any:
        if self.type == "bool":
            return parse_bool(raw)
        if self.type == "int":
            if isinstance(raw, bool):
                raise TypeError(raw)
            if isinstance(raw, float):
                if not raw.is_integer():
                    raise ValueError(raw)
                return int(raw)
            text = str(raw).strip()
            number = float(text)
            if not math.isfinite(number) or not number.is_integer():
                raise ValueError(raw)
            return int(number)
        if self.type == "float":
            if isinstance(raw, bool):
                raise TypeError(raw)
            number = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
            if not math.isfinite(number):
                raise ValueError(raw)
            return number
        text = str(raw).strip()
        if self.type == "choice":
            assert self.choices is not None
            lowered = {c.lower(): c for c in self.choices}
            if text.lower() not in lowered:
                raise ValueError(raw)
            return lowered[text.lower()]
        return text

    def _check_range(self, value: Any) -> None:
        if self.type not in ("int", "float"):
            return
        too_low = self.min is not None and value < self.min
        too_high = self.max is not None and value > self.max
        if too_low or too_high:
            raise OptionError(
                f"Option '{self.name}' is {_fmt(value)}, outside its allowed range "
                f"{self.describe_range()}."
            )

    def to_dict(self) -> dict[str, Any]:
        """A plain description, for `stylebot methods --json` and the playground's controls."""
        return {
            "name": self.name, "type": self.type, "default": self.default, "help": self.help,
            "min": self.min, "max": self.max,
            "choices": list(self.choices) if self.choices else None,
            "log_scale": self.log_scale, "step": self.step, "range": self.describe_range(),
        }


def _fmt(value: float) -> str:
    if isinstance(value, float) and (abs(value) >= 1e5 or (value and abs(value) < 1e-3)):
        return f"{value:g}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class OptionSet:
    """The ordered options of one method."""

    def __init__(self, options: Iterable[Option]) -> None:
        self._options = {o.name: o for o in options}

    def __iter__(self):
        return iter(self._options.values())

    def __contains__(self, name: str) -> bool:
        return name in self._options

    def __getitem__(self, name: str) -> Option:
        return self._options[name]

    @property
    def names(self) -> list[str]:
        return list(self._options)

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self}

    @staticmethod
    def normalise_names(raw: Mapping[str, Any]) -> dict[str, Any]:
        """Option names as declared: 'Preserve-Color' -> 'preserve_color'."""
        return {str(k).strip().lower().replace("-", "_"): v for k, v in raw.items()}

    def validate(self, raw: Mapping[str, Any], *, method: str) -> dict[str, Any]:
        """All options with defaults filled in; unknown names are refused, naming the valid ones."""
        normalised = self.normalise_names(raw)
        unknown = sorted(set(normalised) - set(self._options))
        if unknown:
            valid = ", ".join(self._options) or "none"
            plural = "s" if len(unknown) > 1 else ""
            raise OptionError(
                f"Method '{method}' has no option{plural} {', '.join(repr(u) for u in unknown)}; "
                f"its options are: {valid}."
            )
        return {name: opt.parse(normalised.get(name)) for name, opt in self._options.items()}


# Options many methods share, declared once.
SIZE = Option("size", "int", None, "Longest side of the output in pixels (default: the server's cap).",
              min=64, max=4096, step=64)
SEED = Option("seed", "int", None, "Random seed, for a reproducible result (default: random).",
              min=0, max=2**32 - 1)
STRENGTH = Option("strength", "float", 1.0, "How strongly the style is applied (0 = content only).",
                  min=0.0, max=1.0, step=0.05)
PRESERVE_COLOR = Option("preserve_color", "bool", False,
                        "Keep the content photo's colours; take only texture from the style.")
