"""What happens to a finished result, the same on every platform.

The buttons under a result (Re-roll, Stronger, Weaker, Save as preset, Info) need the request
that made it; the service finds it among the queue's recent jobs, or as the database kept it
(``stylebot.kept_results``). ``result_actions`` says which buttons a result gets,
``check_clicker`` who may click them and ``variant`` builds the request behind a click; the
service uses all three for every adapter, so the buttons behave alike everywhere. The
plain-text pieces of progress and result messages are shared too; each adapter adds its own
markup.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from engine.errors import UserError, visible
from engine.methods import get_method
from engine.request import ImageUpload

if TYPE_CHECKING:
    from engine.events import ResultMeta
    from engine.options import Option
    from engine.request import Requester, StyleRequest

NUDGED = "strength"  # what Stronger/Weaker move: the option each method gives that name
REROLL, STRONGER, WEAKER, SAVE, INFO = "reroll", "stronger", "weaker", "save", "info"
STOP = "stop"  # Stop refining, under a draft (``stylebot.refine``): its owner's alone
VARIANTS = (REROLL, STRONGER, WEAKER)


# what a click does, as the refusal says it
CLICK_WORDS = {REROLL: "re-roll it", STRONGER: "make it stronger", WEAKER: "make it weaker",
               SAVE: "save it as a preset", INFO: "see its settings"}


@dataclass(frozen=True, repr=False)
class PresetStyle(ImageUpload):
    """A style image that came out of its owner's stored preset: the owner's alone, unlike
    the style images posted with a command, which everyone in the channel has seen."""


@dataclass(frozen=True)
class Result:
    """A finished job: the request as it ran (presets filled in) and how it ran."""

    request: "StyleRequest"
    meta: "ResultMeta"


def nudged_option(method_name: str) -> "Option | None":
    """The option Stronger/Weaker move for this method, if it has one: the one named (or,
    like gatys' style_weight, also named) ``strength``."""
    return get_method(method_name).options.target(NUDGED)


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


def result_actions(meta: "ResultMeta") -> list[str]:
    """The buttons a result gets: Re-roll only where a seed changes something, Stronger and
    Weaker only where the strength has room to move, Save and Info always."""
    method = get_method(meta.method)
    actions = [REROLL] if "seed" in method.options else []
    option = nudged_option(meta.method)
    if option is not None:
        current = meta.options.get(option.name)
        if nudge(option, current, +1) != current:
            actions.append(STRONGER)
        if nudge(option, current, -1) != current:
            actions.append(WEAKER)
    return actions + [SAVE, INFO]


def check_clicker(result: Result, action: str, requester: "Requester") -> None:
    """A button never gives the clicker what their own commands could not.

    Anyone may click under a result made from what was posted (the photo, style images sent
    with the command, the options shown under it). A result whose style images came from its
    owner's preset answers its owner only: for anyone else a re-roll would run with, and a
    saved copy would keep, images they cannot see or use.
    """
    if requester.key == result.request.requester.key:
        return
    if action == STOP:
        raise UserError("Only the person who asked for this picture can stop refining it.")
    if any(isinstance(style, PresetStyle) for style in result.request.styles):
        raise UserError(f"Only the person who asked for this result can "
                        f"{CLICK_WORDS.get(action, 'use it')}: it was made with their private preset. "
                        "Use your own style image or preset instead.")


def variant(result: Result, action: str, requester: "Requester") -> "StyleRequest":
    """The request behind a Re-roll, Stronger or Weaker click on ``result``, run as ``requester``.

    Options are the ones the user chose (defaults left out); Re-roll draws a new seed,
    Stronger and Weaker keep the seed so that only the strength changes.
    """
    meta = result.meta
    method = get_method(meta.method)
    options = changed_options(method.options, meta.options)
    if action in (STRONGER, WEAKER):
        option = nudged_option(method.name)
        if option is None:
            raise UserError(f"Method '{method.name}' has no strength to change.")
        current = meta.options.get(option.name)
        new = nudge(option, current, +1 if action == STRONGER else -1)
        if new == current:
            limit = "maximum" if action == STRONGER else "minimum"
            raise UserError(f"'{option.name}' is already at its {limit} ({value_text(current)}).")
        options[option.name] = new
        if "seed" in method.options and meta.seed is not None:
            options["seed"] = meta.seed
    elif action != REROLL:
        raise UserError("That button is not one of mine any more; run the command again.")
    return dataclasses.replace(result.request, requester=requester, method=method.name,
                               options=options, preset=None)


# -- the settings a result carries in its file (engine.resultinfo writes them) ---------------

SETTINGS_DAMAGED = "The Stylebot settings in this image are damaged ({}); they cannot be read."
_MAX_OPTIONS = 64


def read_settings(data: bytes) -> dict[str, Any] | None:
    """The settings a Stylebot result carries, checked; None when the image has none.

    ``UserError`` with one line for bytes that are not an image or settings that are
    malformed: the file came from anyone, so nothing in it is trusted.
    """
    from engine import resultinfo
    from engine.methods import method_names

    try:
        text = resultinfo.embedded_text(data)
    except ValueError:
        raise UserError("That file is not an image Stylebot can read.") from None
    if text is None:
        return None
    if len(text) > resultinfo.MAX_TEXT:
        raise UserError(SETTINGS_DAMAGED.format("too long"))
    try:
        raw = json.loads(text)
    except ValueError:
        raise UserError(SETTINGS_DAMAGED.format("not JSON")) from None
    if not isinstance(raw, dict):
        raise UserError(SETTINGS_DAMAGED.format("not an object"))
    method, options = raw.get("method"), raw.get("options", {})
    if not isinstance(method, str) or not method:
        raise UserError(SETTINGS_DAMAGED.format("no method"))
    if method not in method_names():
        raise UserError(f"This image was made with method '{method[:40]}', which this Stylebot "
                        "does not have.")
    if (not isinstance(options, dict) or len(options) > _MAX_OPTIONS
            or not all(isinstance(k, str) and isinstance(v, (str, int, float, bool))
                       for k, v in options.items())):
        raise UserError(SETTINGS_DAMAGED.format("bad options"))
    seed, prompt, size = raw.get("seed"), raw.get("prompt"), raw.get("size")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UserError(SETTINGS_DAMAGED.format("bad seed"))
    if prompt is not None and not isinstance(prompt, str):
        raise UserError(SETTINGS_DAMAGED.format("bad prompt"))
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(isinstance(n, int) for n in size)):
        raise UserError(SETTINGS_DAMAGED.format("bad size"))
    options = {k: v for k, v in options.items() if not resultinfo.is_path(v)}
    return {"stylebot": str(raw.get("stylebot", "unknown"))[:40], "method": method,
            "options": options, "seed": seed, "prompt": prompt, "size": size}


def _typed(value: Any) -> str:
    """A value as typed in a command (unquoted; ``ParsedCommand.to_text`` quotes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def reuse_command(settings: dict[str, Any], *, style_weights: list[float] | None = None) -> str:
    """"Use these settings": the /stylize command that restyles a new photo the same way
    (options that differ from the defaults, the seed where the method takes one, and the
    blend of several style images where it is known)."""
    from .commands import STYLIZE, ParsedCommand

    method = get_method(settings["method"])
    known = {o.name for o in method.options}
    options = {k: _typed(v) for k, v in
               changed_options(method.options, {k: v for k, v in settings["options"].items()
                                                if k in known}).items()}
    if settings.get("seed") is not None and "seed" in known:
        options["seed"] = str(settings["seed"])
    return ParsedCommand(name=STYLIZE, method=method.name, options=options,
                         style_weights=style_weights, prompt=settings.get("prompt")).to_text()


def settings_lines(settings: dict[str, Any]) -> list[str]:
    """The settings as plain lines, the same on every front end (each adds its markup); the
    options shown are those that differ from the method's defaults, as under a result."""
    chosen = changed_options(get_method(settings["method"]).options, settings["options"])
    lines = [f"Made with Stylebot {settings['stylebot']}, method {settings['method']}",
             f"Options: {visible(format_options(chosen))}"]
    if settings.get("prompt"):
        lines.append(f"Prompt: {visible(settings['prompt'])}")
    if settings.get("seed") is not None:
        lines.append(f"Seed: {settings['seed']}")
    if settings.get("size"):
        lines.append(f"Size: {settings['size'][0]}x{settings['size'][1]}")
    return lines


# -- /queue and /stats, the same text pieces on every front end --------------------------------

def duration_text(seconds: float) -> str:
    """'8 s', '3 min', '1 h 5 min': how long, as people round it."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def queue_where(job: Any) -> str:
    """Where a ``QueuedJob`` is: 'running now' or 'position 2'."""
    return "running now" if job.position == 0 else f"position {job.position}"


def queue_eta(job: Any) -> str:
    """Its ETA as a phrase, or '' when there is no history to estimate from."""
    if job.eta_s is None:
        return ""
    return f"about {duration_text(job.eta_s)} left"


def queue_line(job: Any) -> str:
    """One job of /queue, plain: 'a1b2c3d4 hub: position 2, about 40 s left'."""
    eta = queue_eta(job)
    return f"{job.job_id} {job.method}: {queue_where(job)}" + (f", {eta}" if eta else "")


def stats_lines(stats: Iterable[Any]) -> list[str]:
    """/stats, one line per method (``storage.jobs.MethodStats``), then its failure reasons."""
    lines = []
    for s in stats:
        counts = ", ".join(f"{n} {status}" for status, n in s.by_status.items())
        times = (f"median {duration_text(s.median)}, p95 {duration_text(s.p95)}"
                 if s.median is not None else "no finished runs")
        lines.append(f"{s.method}: {s.jobs} jobs ({counts}); {times}")
        lines += [f"  failed {n}x: {visible(error)[:200]}" for error, n in s.failures]
    return lines or ["No jobs in the log yet."]
