"""One parser for typed commands, shared by the playground and the chat adapters.

People type Discord's slash syntax everywhere (`/stylize method:adain strength:0.5`,
`/sd prompt:"a fox in snow" strength:0.6`), so every text front end turns that text into
the same ``ParsedCommand`` here, and into a ``StyleRequest`` with ``build_request``.
Option values stay strings: each method's declared options convert and range-check them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from engine.errors import OptionError, UserError
from engine.options import parse_bool
from engine.request import ImageUpload, Place, Requester, StyleRequest

STYLIZE = "stylize"
STYLIZE_ALIASES = {"stylize", "stylise", "style", "restyle"}
PRESET_ACTIONS = ("save", "use", "show", "delete", "list")
OTHER_COMMANDS = {"presets", "cancel", "queue", "stats", "methods", "help"}

# A key is a word right before ':' or '='; "10:30" or "http://x" inside a prompt is not.
_KEY = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)[:=]")
# Opening quote -> the characters that may close it: phones and Slack turn " into “ ”.
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d\u201c\"", "\u201d": "\u201d\u201c\"",
           "\u2018": "\u2019", "\u2019": "\u2019", "\u00ab": "\u00bb"}


class CommandError(UserError):
    """The typed command itself is malformed (not an engine option problem)."""


@dataclass
class ParsedCommand:
    """What a typed command asks for, before any method or option is checked."""

    name: str  # "stylize", "preset", "presets", "cancel", "queue", "methods", "help"
    method: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    prompt: str | None = None
    preset: str | None = None
    style_weights: list[float] | None = None
    action: str | None = None  # for "preset": save, use, show, delete, list
    target: str | None = None  # the preset name (preset actions) or the job id (cancel)

    def to_text(self) -> str:
        """The canonical command line; parsing it gives this command back."""
        if self.name == "preset":
            words = ["/preset", self.action or "list"]
            if self.target:
                words.append(f"name:{quote(self.target)}")
        elif self.name == "cancel" and self.target:
            words = ["/cancel", f"job:{quote(self.target)}"]
        else:
            words = ["/" + self.name]
        if self.name in (STYLIZE, "preset"):
            if self.method:
                words.append(f"method:{quote(self.method)}")
            if self.preset:
                words.append(f"preset:{quote(self.preset)}")
            words += [f"{k}:{quote(v)}" for k, v in self.options.items()]
            if self.style_weights is not None:
                words.append("blend:" + ",".join(f"{w:g}" for w in self.style_weights))
            if self.prompt:
                words.append(f"prompt:{quote(self.prompt)}")
        return " ".join(words)


def parse_flag(name: str, value: Any) -> bool:
    """A yes/no word given with a command or form (``replace=yes``); absent or empty is no."""
    if value is None or str(value).strip() == "":
        return False
    try:
        return parse_bool(value)
    except ValueError:
        raise CommandError(f"'{name}' takes yes or no, not '{str(value)[:20]}'.") from None


def quote(value: Any) -> str:
    """A value as it must be typed: quoted when it holds spaces, quotes or nothing."""
    text = str(value)
    if text and not re.search(r"[\s\"'\u201c\u201d\u2018\u2019\u00ab\u00bb\\]", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def method_commands() -> list[str]:
    """Each method is also its own command: `/sd ...` means `/stylize method:sd ...`."""
    from engine.methods import method_names

    return method_names()


def parse_command(text: str, *, command: str | None = None) -> ParsedCommand:
    """Parse ``text`` (e.g. "/stylize method:adain strength:0.5") into a ``ParsedCommand``.

    ``command`` is for platforms that deliver the command name apart from its text (a Slack
    slash command): then ``text`` holds only the arguments. Text without a leading slash
    is read as the arguments of /stylize. Raises ``CommandError`` with a one-line reason.
    """
    text = (text or "").strip()
    if command is None:
        if text.startswith("/"):
            head, text = re.match(r"/(\S*)\s*(.*)", text, re.DOTALL).groups()
            if not head:
                raise CommandError("Type a command after the '/', e.g. /stylize method:hub.")
            command = head
        else:
            command = STYLIZE
    name = command.strip().lstrip("/").lower()
    pairs, words = _tokenize(text)

    methods = method_commands()
    if name in STYLIZE_ALIASES and text.strip().lower() in ("help", "?"):
        return ParsedCommand(name="help")  # "/stylize help", as Slack users type it
    if name in STYLIZE_ALIASES or name in methods:
        return _stylize(name, pairs, words, methods)
    if name == "preset":
        return _preset(pairs, words, methods)
    if name == "settings":
        return _settings(pairs, words)
    if name in OTHER_COMMANDS:
        return _other(name, pairs, words)
    known = ["/stylize"] + [f"/{m}" for m in methods] + ["/preset", "/presets", "/cancel", "/queue",
                                                          "/stats", "/settings", "/methods", "/help"]
    raise CommandError(f"Unknown command '/{name}'. Commands: {', '.join(known)}.")


def _tokenize(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Split into ``key:value`` pairs (in order) and bare words.

    A quoted value may hold anything; an unquoted ``prompt`` runs on over bare words until
    the next ``key:``, because that is how people type sentences into a chat box.
    """
    pairs: list[tuple[str, str]] = []
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        key_match = _KEY.match(text, i)
        if key_match and (i == 0 or text[i - 1].isspace()):
            key = key_match.group(1).lower().replace("-", "_")
            i = key_match.end()
            while i < n and text[i] in " \t":  # "strength: 0.5" is fine too
                i += 1
            spaced = i > key_match.end()
            if i >= n or text[i].isspace() or (spaced and _KEY.match(text, i)):
                value = ""  # "strength: method:adain" forgot the value
            elif text[i] in _QUOTES:
                value, i = _quoted(text, i, key)
            elif key == "prompt":
                value, i = _run_on(text, i)
            else:
                value, i = _word(text, i)
            if not value.strip():
                raise CommandError(f"'{key}' has no value; write it as {key}:value.")
            if any(key == k for k, _ in pairs):
                raise CommandError(f"'{key}' is given twice; give each option once.")
            pairs.append((key, value))
            continue
        if text[i] in _QUOTES:
            value, i = _quoted(text, i, None)
            words.append(value)
            continue
        word, i = _word(text, i)
        words.append(word)
    return pairs, words


def _word(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and not text[i].isspace():
        i += 1
    return text[start:i], i


def _run_on(text: str, i: int) -> tuple[str, int]:
    """An unquoted prompt: everything up to the next ``key:`` that starts a word."""
    start = i
    while i < len(text):
        if text[i].isspace():
            j = i
            while j < len(text) and text[j].isspace():
                j += 1
            if j >= len(text) or _KEY.match(text, j):
                break
            i = j
        else:
            i += 1
    return text[start:i].strip(), i


def _quoted(text: str, i: int, key: str | None) -> tuple[str, int]:
    closers = _QUOTES[text[i]]
    i += 1
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and (text[i + 1] in closers or text[i + 1] == "\\"):
            out.append(text[i + 1])  # \" inside "..." and \\ for a backslash
            i += 2
            continue
        if ch in closers:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    if key:
        raise CommandError(f"The quote after '{key}:' is never closed.")
    raise CommandError(f"A quote is never closed (at {''.join(out)[:20]!r}).")


def _weights(raw: str) -> list[float]:
    try:
        weights = [float(w) for w in re.split(r"[,\s/]+", raw.strip()) if w]
    except ValueError:
        raise OptionError(f"'blend' takes numbers separated by commas, e.g. blend:0.7,0.3; got '{raw}'.") from None
    if not weights:
        raise OptionError("'blend' takes numbers separated by commas, e.g. blend:0.7,0.3.")
    return weights


def _stylize(name: str, pairs: list[tuple[str, str]], words: list[str],
             methods: list[str]) -> ParsedCommand:
    values = dict(pairs)
    method = values.pop("method", None)
    if name in methods:
        if method is not None and method.strip().lower() != name:
            raise CommandError(f"'/{name}' already picks the method {name}; "
                               f"use /stylize method:{method} for another method.")
        method = name
    elif method is None and words and words[0].lower() in methods:
        method = words.pop(0).lower()  # "/stylize adain" reads naturally
    prompt = values.pop("prompt", None)
    if words:
        free = " ".join(words)
        if prompt is not None:
            raise CommandError(f"I don't know what '{free}' means here; write options as "
                               "name:value (e.g. strength:0.5) and quote a prompt with spaces.")
        prompt = free  # "/sd a fox in the snow strength:0.6"
    preset = values.pop("preset", None)
    blend = values.pop("blend", None)
    for misplaced in ("name", "job"):
        if misplaced in values:
            raise CommandError(f"'{misplaced}:' belongs to /preset or /cancel, not to /{name}.")
    return ParsedCommand(name=STYLIZE, method=method.strip().lower() if method else None,
                         options=values, prompt=(prompt or "").strip() or None, preset=preset or None,
                         style_weights=_weights(blend) if blend is not None else None)


def _preset(pairs: list[tuple[str, str]], words: list[str], methods: list[str]) -> ParsedCommand:
    action = words.pop(0).lower() if words else "list"
    if action not in PRESET_ACTIONS:
        raise CommandError(f"/preset takes one of: {', '.join(PRESET_ACTIONS)} "
                           f"(e.g. /preset save name:mine method:adain), not '{action}'.")
    values = dict(pairs)
    name = values.pop("name", None)
    if name is None and words:
        name = words.pop(0)
    if words:
        raise CommandError(f"I don't know what '{' '.join(words)}' means here; "
                           "write options as name:value, e.g. strength:0.5.")
    if action == "list":
        if values or name:
            raise CommandError("/preset list takes nothing else.")
        return ParsedCommand(name="presets")
    if not name:
        raise CommandError(f"/preset {action} needs a name, e.g. /preset {action} name:mine.")
    if action == "use":  # "/preset use mine strength:0.3" is /stylize preset:mine strength:0.3
        parsed = _stylize(STYLIZE, list(values.items()), [], methods)
        parsed.preset = name
        return parsed
    if action in ("show", "delete") and values:
        raise CommandError(f"/preset {action} takes only a name.")
    parsed = _stylize(STYLIZE, list(values.items()), [], methods) if values else ParsedCommand(STYLIZE)
    if parsed.preset:
        raise CommandError("A preset cannot be saved from another preset; give its method and options.")
    return ParsedCommand(name="preset", action=action, target=name, method=parsed.method,
                         options=parsed.options, prompt=parsed.prompt,
                         style_weights=parsed.style_weights)


def _settings(pairs: list[tuple[str, str]], words: list[str]) -> ParsedCommand:
    """/settings [show], /settings server|channel name=value ...: the values are checked by
    the application (``stylebot.server_settings``)."""
    action = words.pop(0).lower() if words else "show"
    if action not in ("show", "server", "channel") or words or (action == "show" and pairs):
        raise CommandError("Use /settings show, or /settings server|channel name=value ..., e.g. "
                           "/settings channel methods=hub,fast sd=no.")
    return ParsedCommand(name="settings", action=action, options=dict(pairs))


def _other(name: str, pairs: list[tuple[str, str]], words: list[str]) -> ParsedCommand:
    values = dict(pairs)
    if name == "cancel":
        job = values.pop("job", None) or (words.pop(0) if words else None)
    else:
        job = None
    if values or words:
        extra = ", ".join([f"{k}:" for k in values] + words)
        raise CommandError(f"/{name} takes {'only a job id' if name == 'cancel' else 'nothing'}; "
                           f"remove {extra}.")
    return ParsedCommand(name=name, target=job)


def build_request(parsed: ParsedCommand, *, requester: Requester, content: ImageUpload | None,
                  styles: list[ImageUpload] | None = None,
                  mask: ImageUpload | None = None, place: Place | None = None) -> StyleRequest:
    """The one place a parsed /stylize command and its attachments become a ``StyleRequest``.

    What the method makes of it (options, prompt, images) is checked by ``StyleService``.
    """
    if parsed.name != STYLIZE:
        raise CommandError(f"/{parsed.name} does not restyle an image; use /stylize.")
    if content is None or not content.data:
        raise UserError("Attach the image to restyle (the content image).")
    return StyleRequest(method=parsed.method, content=content, requester=requester,
                        styles=list(styles or []), style_weights=parsed.style_weights,
                        prompt=parsed.prompt, options=dict(parsed.options), preset=parsed.preset,
                        mask=mask, place=place)


HELP = """Restyle an image: attach it and type
  /stylize method:<method> option:value ...   e.g. /stylize method:adain strength:0.5
  /<method> ...                               e.g. /sd prompt:"a watercolour fox" strength:0.6
  /stylize preset:<name>                      reuse a saved preset
  /stylize method:gatys quality:refine        a draft at once, then gatys refines it
Presets: /preset save name:<name> method:<method> option:value ... (attach style images),
  /presets, /preset show name:<name>, /preset delete name:<name>
Also: /cancel, /queue, /methods, /help. Quote values with spaces: prompt:"two words"."""
