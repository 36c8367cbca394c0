"""What admins may set per server and per channel, and what those settings do to a request.

The rules live here once, for every chat platform: a room's (channel's) settings override
its space's (server's, workspace's) one by one; a default method and size fill what the user
left out; a method not allowed there, or sd where it is off, is refused with one line; a
per-user job limit binds in that space; and results are public or ephemeral. Who counts as
an admin is each platform's rule, checked by its front end; the storage is
``storage/server_settings.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine.errors import OptionError, UserError
from engine.methods import DEFAULT_METHOD, get_method, method_names
from engine.options import parse_bool
from engine.request import StyleRequest
from storage.server_settings import PlaceSettingsRecord

PUBLIC, EPHEMERAL = "public", "ephemeral"
CLEAR_WORDS = ("default", "inherit", "none", "unset")
# What users type (the same on every platform) -> the stored setting.
NAMES = {"method": "default_method", "size": "default_size", "methods": "allowed_methods",
         "jobs_per_user": "jobs_per_user", "sd": "allow_sd", "results": "results"}
HELP = ("method=<default method> size=<default px> methods=<allowed, comma-separated, or all> "
        "jobs_per_user=<n> sd=yes|no results=public|ephemeral (default clears one)")


@dataclass(frozen=True)
class PlaceRules:
    """The settings in force in one room: its own, else its space's, else none (None)."""

    default_method: str | None = None
    default_size: int | None = None
    allowed_methods: tuple[str, ...] | None = None  # None: every method
    jobs_per_user: int | None = None
    allow_sd: bool | None = None
    results: str | None = None

    @property
    def public(self) -> bool:
        return self.results != EPHEMERAL

    @classmethod
    def merge(cls, space: PlaceSettingsRecord | None, room: PlaceSettingsRecord | None) -> "PlaceRules":
        values = {**(space.values() if space else {}), **(room.values() if room else {})}
        if values.get("allowed_methods") is not None:
            values["allowed_methods"] = tuple(values["allowed_methods"])
        return cls(**values)

    def check_method(self, method: str) -> None:
        """Refuse, in one line, a method the admins did not allow here."""
        if method == "sd" and self.allow_sd is False:
            raise UserError("The admins turned sd off here; use another method.")
        if self.allowed_methods is not None and method not in self.allowed_methods:
            raise UserError(f"Method '{method}' is not allowed here; allowed: "
                            f"{', '.join(self.allowed_methods) or 'none'}.")

    def apply(self, request: StyleRequest) -> StyleRequest:
        """The request with this place's defaults where the user gave none; refused if not allowed.

        Runs after a preset filled the request, so a preset's method and size win over the
        place's defaults, and a preset cannot bring in a method that is not allowed.
        """
        method = (request.method or "").strip().lower() or self.default_method or DEFAULT_METHOD
        self.check_method(method)
        options = dict(request.options)
        if (self.default_size is not None and options.get("size") in (None, "")
                and "size" in get_method(method).options):
            options["size"] = self.default_size
        return dataclasses.replace(request, method=method, options=options)


@dataclass(frozen=True)
class PlaceSettingsView:
    """What /settings show tells: each level's own settings and the result in this room."""

    space: PlaceSettingsRecord | None
    room: PlaceSettingsRecord | None
    rules: PlaceRules


def parse_changes(given: dict[str, Any]) -> dict[str, Any]:
    """Typed settings (``method=fast``, ``methods=hub,fast``, ``sd=no``) as stored values.

    A value of ``default`` clears that setting (None: inherit). ``UserError`` names the
    setting at fault and what it takes.
    """
    if not given:
        raise UserError(f"Name at least one setting: {HELP}.")
    out: dict[str, Any] = {}
    for raw_name, raw in given.items():
        name = raw_name.strip().lower().replace("-", "_")
        if name not in NAMES:
            raise UserError(f"There is no setting '{raw_name}'; settings: {', '.join(NAMES)}.")
        text = "" if raw is None else str(raw).strip()
        if text.lower() in CLEAR_WORDS or text == "":
            out[NAMES[name]] = None
        else:
            out[NAMES[name]] = _parse(name, text)
    return out


def _parse(name: str, text: str) -> Any:
    known = method_names()
    if name == "method":
        method = text.lower()
        if method not in known:
            raise UserError(f"Unknown method '{text}'; methods: {', '.join(known)}.")
        return method
    if name == "methods":
        if text.lower() == "all":
            return None
        chosen = [m.strip().lower() for m in text.replace(" ", ",").split(",") if m.strip()]
        wrong = [m for m in chosen if m not in known]
        if wrong or not chosen:
            raise UserError(f"Unknown method(s) {', '.join(wrong) or text!r} in methods; "
                            f"methods: {', '.join(known)}.")
        return list(dict.fromkeys(chosen))
    if name == "size":
        try:
            return int(get_method(DEFAULT_METHOD).options["size"].parse(text))
        except OptionError as exc:
            raise UserError(f"size: {exc.message}") from None
    if name == "jobs_per_user":
        if not text.isdigit() or int(text) < 1:
            raise UserError(f"jobs_per_user takes a whole number of 1 or more, not '{text[:20]}'.")
        return int(text)
    if name == "sd":
        try:
            return parse_bool(text)
        except ValueError:
            raise UserError(f"sd takes yes or no, not '{text[:20]}'.") from None
    results = text.lower()
    if results not in (PUBLIC, EPHEMERAL):
        raise UserError(f"results takes {PUBLIC} or {EPHEMERAL}, not '{text[:20]}'.")
    return results


def describe(values: dict[str, Any]) -> str:
    """Stored settings as the user types them back (``method=fast sd=no``); "nothing set"."""
    shown = {"default_method": "method", "default_size": "size", "allowed_methods": "methods",
             "jobs_per_user": "jobs_per_user", "allow_sd": "sd", "results": "results"}
    words = []
    for stored, typed in shown.items():
        value = values.get(stored)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, (list, tuple)):
            value = ",".join(value)
        words.append(f"{typed}={value}")
    return " ".join(words) or "nothing set"


def show_lines(view: PlaceSettingsView) -> list[str]:
    """/settings show, the same lines on every platform."""
    rules = view.rules
    return [
        f"This server: {describe(view.space.values() if view.space else {})}",
        f"This channel (wins over the server's): {describe(view.room.values() if view.room else {})}",
        "In force here: "
        f"method {rules.default_method or DEFAULT_METHOD}, "
        f"size {rules.default_size or 'the bot default'}, "
        f"methods {', '.join(rules.allowed_methods) if rules.allowed_methods is not None else 'all'}"
        f"{', no sd' if rules.allow_sd is False else ''}, "
        f"jobs per user {rules.jobs_per_user or 'the bot limit'}, "
        f"results {rules.results or PUBLIC}.",
    ]
