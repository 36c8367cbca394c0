"""Method options, declared once and used everywhere.

Each method lists its options (name, type, default, range, help). That one declaration
drives validation here, the CLI flags, the chat commands' choices and parsing, and the
playground's sliders, so a range or default is never written twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Literal, Mapping

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
    # Other names this option is given by: an old name ("alpha") or a name on its own scale
    # (``Alias``). Plain strings become ``Alias(name)``.
    aliases: tuple["Alias | str", ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "aliases", tuple(a if isinstance(a, Alias) else Alias(a)
                                                  for a in self.aliases))

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
            "aliases": [a.to_dict(self) for a in self.aliases],
        }


@dataclass(frozen=True)
class Alias:
    """Another name for an option.

    Without ``scale`` the value given under this name is the option's value (adain's old
    name ``alpha`` for ``strength``). With ``scale``, the value is read and range-checked
    by that declaration and ``to_value`` turns it into the option's value (gatys reads
    ``strength`` 0..1 as the position of its log ``style_weight`` slider).
    """

    name: str
    scale: Option | None = None
    to_value: Callable[[Any], Any] | None = None

    def reader(self, target: Option) -> Option:
        """The declaration that parses a value given under this name (errors name the alias)."""
        return self.scale if self.scale is not None else replace(target, name=self.name, aliases=())

    def read(self, target: Option, raw: Any) -> Any:
        """``raw`` given under this name, as the value of ``target``."""
        if self.scale is None:
            return raw
        value = self.scale.parse(raw)
        return self.to_value(value) if self.to_value is not None else value

    def to_dict(self, target: Option) -> dict[str, Any]:
        reader = self.reader(target)
        return {"name": self.name, "range": reader.describe_range(),
                "help": reader.help if self.scale is not None else f"Another name for {target.name}."}


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
        # Every name a value may be given under -> (the option it sets, the alias or None).
        self._names: dict[str, tuple[Option, Alias | None]] = {}
        for option in self._options.values():
            for name, alias in [(option.name, None)] + [(a.name, a) for a in option.aliases]:
                if name in self._names:
                    raise ValueError(f"Option name '{name}' is declared twice.")
                self._names[name] = (option, alias)

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

    def target(self, name: str) -> Option | None:
        """The option a value given under ``name`` (its own name or an alias) sets."""
        found = self._names.get(_clean(name))
        return found[0] if found else None

    def reader(self, name: str) -> Option | None:
        """The declaration that reads a value given under ``name``: the option itself, or
        for an alias on its own scale (gatys' ``strength``), that scale."""
        found = self._names.get(_clean(name))
        if not found:
            return None
        option, alias = found
        return option if alias is None else alias.reader(option)

    def normalise_names(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Options under their declared names: 'Preserve-Color' -> 'preserve_color', an alias
        -> its option (a scaled alias's value read and converted). Unknown names are kept
        for ``validate`` to refuse; one option given under two of its names is refused."""
        return {name: value for name, (_, value) in self._resolve(raw).items()}

    def _resolve(self, raw: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
        """Declared name -> (the name it was given under, its value)."""
        out: dict[str, tuple[str, Any]] = {}
        for key, value in raw.items():
            given = _clean(key)
            option, alias = self._names.get(given, (None, None))
            name = option.name if option is not None else given
            if name in out:
                first = out[name][0]
                if first == given:
                    raise OptionError(f"Option '{given}' is given twice; give it once.")
                raise OptionError(f"'{first}' and '{given}' are two names for the same option; "
                                  "give only one.")
            if alias is not None:
                value = alias.read(option, value)
            out[name] = (given, value)
        return out

    def validate(self, raw: Mapping[str, Any], *, method: str) -> dict[str, Any]:
        """All options with defaults filled in; unknown names are refused, naming the valid ones."""
        resolved = self._resolve(raw)
        unknown = sorted(set(resolved) - set(self._options))
        if unknown:
            valid = ", ".join(self._options) or "none"
            plural = "s" if len(unknown) > 1 else ""
            raise OptionError(
                f"Method '{method}' has no option{plural} {', '.join(repr(u) for u in unknown)}; "
                f"its options are: {valid}."
            )
        return {name: self._parse(opt, *resolved.get(name, (name, None)))
                for name, opt in self._options.items()}

    def _parse(self, option: Option, given: str, value: Any) -> Any:
        _, alias = self._names[given]
        if alias is None or alias.scale is not None:  # a scaled alias was read already
            return option.parse(value)
        return alias.reader(option).parse(value)


def _clean(name: Any) -> str:
    return str(name).strip().lower().replace("-", "_")


# Options many methods share, declared once.
SIZE = Option("size", "int", None, "Longest side of the output in pixels (default: the server's cap).",
              min=64, max=4096, step=64)
SEED = Option("seed", "int", None, "Random seed, for a reproducible result (default: random).",
              min=0, max=2**32 - 1)
STRENGTH = Option("strength", "float", 1.0, "How strongly the style is applied (0 = content only).",
                  min=0.0, max=1.0, step=0.05)
PRESERVE_COLOR = Option("preserve_color", "bool", False,
                        "Keep the content photo's colours; take only texture from the style.")
SMOOTH = Option("smooth", "float", 0.0,
                "Clips only: how much less a frame may flicker (0 = off, 1 = most); still regions "
                "keep the previous frame's style.", min=0.0, max=1.0, step=0.05)
