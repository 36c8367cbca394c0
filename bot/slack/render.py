"""What the Slack adapter says: message texts, Block Kit messages and modals.

Pure functions of engine data (events, method declarations, presets), so the wording and
layout live in one place. Option names, ranges and defaults always come from the methods'
own declarations.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from stylebot.results import format_options, progress_bar, settings_lines
from bot.slack.inputs import CONTENT_FILETYPES, IMAGE_FILETYPES, SlackFile

if TYPE_CHECKING:
    from engine.events import ResultMeta
    from engine.methods.base import Method
    from stylebot.fitting import FittedClip
    from stylebot.service import PresetRecord, PresetSummary, ResultInfo

MAX_STYLE_FILES = 4  # file_input allows up to 10; no method takes more than a few styles

# action_ids of the buttons and callback_ids of the modals, one place for both sides.
# A result button's action_id is the prefix and the service's action name ("reroll", ...).
ACTION_PREFIX = "stylebot_"
REROLL, STRONGER, WEAKER, SAVE, INFO, CANCEL, STOP = (
    ACTION_PREFIX + a for a in ("reroll", "stronger", "weaker", "save", "info", "cancel", "stop"))
RUN_VIEW, SHORTCUT_VIEW, SAVE_VIEW = "stylebot_run", "stylebot_shortcut", "stylebot_save_preset"
SHORTCUT_ID = "stylebot_restyle"
# a shortcut's callback_id, another namespace than the Info button's action_id (spelt alike)
INFO_SHORTCUT_ID = "stylebot_info"
TRAIN_SHORTCUT_ID, TRAIN_VIEW = "stylebot_train", "stylebot_train_view"


def esc(text: Any) -> str:
    """Text from users, safe inside mrkdwn (Slack reads <, > and & as markup)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def option_hint(method: "Method") -> str:
    """A method's options with their ranges, for modal hints and help."""
    parts = []
    for option in method.options:
        allowed = option.describe_range()
        parts.append(option.name if allowed.startswith("any ") else f"{option.name} ({allowed})")
    return f"{method.name}: " + (", ".join(parts) or "no options")


def settings_text(settings: dict[str, Any], command: str) -> str:
    """*Stylebot info*: the settings read back from an image, and how to reuse them."""
    lines = "\n".join(esc(line) for line in settings_lines(settings))
    command = esc(command.replace("`", "'"))  # inside a code block
    return f"*Stylebot settings*\n{lines}\nUse these settings on a new photo:\n```{command}```"


def info_text(info: "ResultInfo") -> str:
    """The Info button: how the result was made, and the command that makes it again."""
    lines = "\n".join(esc(line) for line in info.lines)
    command = esc(info.command.replace("`", "'"))  # inside a code block
    return f"*How this result was made*\n{lines}\nUse these settings on a new photo:\n```{command}```"


# -- the progress message --------------------------------------------------------------------

def queued(job_id: str, method: str, user: str, position: int) -> str:
    where = "next in line" if position <= 1 else f"number {position} in the queue"
    return f"⏳ <@{user}>'s *{esc(method)}* job is {where} (job `{job_id}`)."


def started(job_id: str, method: str, user: str, device: str) -> str:
    return f"🎨 Running <@{user}>'s *{esc(method)}* job on {esc(device)}… (job `{job_id}`)"


def progress(job_id: str, method: str, user: str, fraction: float, stage: str = "") -> str:
    stage_text = f" · {esc(stage)}" if stage else ""
    return (f"🎨 <@{user}>'s *{esc(method)}* `{progress_bar(fraction)}` {fraction * 100:.0f}%"
            f"{stage_text} (job `{job_id}`)")


def failed(job_id: str, user: str, message: str) -> str:
    return f"⚠️ <@{user}>, job `{job_id}` did not finish: {esc(message)}"


def cancelled(job_id: str, user: str, reason: str) -> str:
    return f"🚫 <@{user}>'s job `{job_id}` was cancelled: {esc(reason)}"


def refused(message: str) -> str:
    return f"⚠️ {esc(message)}"


def bug(ref: str) -> str:
    return f"❌ Something went wrong on our side (ref {ref}); it has been logged."


def with_cancel(text: str, job_id: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": CANCEL, "value": job_id, "text": _plain("Cancel")}]}]


def preview_block(file_id: str) -> dict[str, Any]:
    """The progress message's preview: an image block showing the bot's private upload."""
    return {"type": "image", "block_id": f"preview_{file_id}", "slack_file": {"id": file_id},
            "alt_text": "Preview of the image so far"}


# -- the result ----------------------------------------------------------------------------------

def result_blocks(job_id: str, meta: "ResultMeta", shown: dict[str, Any], user: str, *,
                  prompt: str | None, actions: Iterable[str],
                  clip: "FittedClip | None" = None, status: str | None = None,
                  image: str | None = None) -> list[dict[str, Any]]:
    """The summary under a result: method, what was chosen, seed and time, and its buttons;
    for a clip, its frames and fps as uploaded and what fitting lowered.

    quality=refine edits it in place: ``status`` says how the refinement of a draft goes,
    and ``image`` (an uploaded file's id) shows the refined picture that replaced the draft.
    """
    lines = [f"*Restyled with {esc(meta.method)}* for <@{user}>"]
    if prompt:
        lines.append(f"> {esc(prompt[:500])}")
    facts = [f"options: {esc(format_options(shown))}"]
    if meta.seed is not None:
        facts.append(f"seed {meta.seed}")
    size = clip.size if clip is not None else meta.size
    facts += [f"{meta.seconds:.1f} s on {esc(meta.device)}", f"{size[0]}×{size[1]}"]
    if clip is not None:
        facts.append(clip.facts)
        if clip.note:
            facts.append(esc(clip.note))
    facts.append(f"job `{job_id}`")
    labels = {REROLL: "🎲 Re-roll", STRONGER: "➕ Stronger", WEAKER: "➖ Weaker",
              SAVE: "💾 Save as preset", INFO: "ℹ️ Info", STOP: "⏹️ Stop refining"}
    elements = [{"type": "button", "action_id": ACTION_PREFIX + a, "value": job_id,
                 "text": _plain(labels[ACTION_PREFIX + a])} for a in actions]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)}]},
    ]
    if status:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": esc(status)}]})
    if image:
        blocks.append({"type": "image", "block_id": f"refined_{job_id}", "slack_file": {"id": image},
                       "alt_text": f"Refined with {meta.method}"})
    if elements:
        blocks.append({"type": "actions", "block_id": f"result_{job_id}", "elements": elements})
    return blocks


def result_text(job_id: str, meta: "ResultMeta", user: str, clip: "FittedClip | None" = None) -> str:
    """The notification text that goes with the blocks."""
    what = f"clip ({clip.facts})" if clip is not None else "image"
    return f"<@{user}>'s {what}, restyled with {meta.method} in {meta.seconds:.1f} s (job {job_id})"


# -- presets and help ------------------------------------------------------------------------------

def presets_list(presets: list["PresetSummary"]) -> str:
    if not presets:
        return ("You have no presets yet. Save one with `/preset save <name> method=<method> "
                "option=value …`, or with *Save as preset* under a result.")
    lines = [f"*Your presets* ({len(presets)}):"]
    for p in presets:
        plural = "s" if p.style_count != 1 else ""
        styles = f", {p.style_count} style image{plural}" if p.style_count else ""
        lines.append(f"• `{esc(p.name)}`: {esc(p.method)} {esc(format_options(p.options))}{styles}"
                     f" (used {p.use_count}×)")
    return "\n".join(lines)


def preset_details(preset: "PresetRecord") -> str:
    lines = [f"*Preset `{esc(preset.name)}`*: method {esc(preset.method)}",
             f"options: {esc(format_options(preset.options))}"]
    for i, style in enumerate(preset.styles, start=1):
        lines.append(f"style {i}: {esc(style.filename)} (weight {style.weight:g})")
    lines.append(f"Use it with `/stylize preset={esc(preset.name)}` or `/preset use {esc(preset.name)}`.")
    return "\n".join(lines)


def window_text(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


def help_text(methods: list["Method"], window_s: int) -> str:
    lines = [
        "*Stylebot* restyles your latest image in this channel "
        f"(shared in the last {window_text(window_s)}), a Slack file link in the command, or one "
        "you pick:",
        "• `/sd <prompt> [strength=0.6 steps=30 seed=7 …]`: restyle with a text prompt",
        "• `/stylize method=<method> [preset=<name>] [option=value …]`",
        "• `/stylize method=gatys quality=refine`: a draft at once, then gatys refines it in place",
        "• `/preset save|list|show|delete|use <name> …`: your own presets",
        "• the message shortcut *Restyle with Stylebot* on a message with an image",
        "• mention me in a message with an image: `@stylebot sd: oil painting` or "
        "`@stylebot adain preset=night`",
        "*Methods and their options*:",
    ]
    lines += [f"• *{esc(m.name)}* ({esc(m.title)}): {esc(option_hint(m).split(': ', 1)[1])}"
              for m in methods]
    return "\n".join(lines)


# -- modals ------------------------------------------------------------------------------------------

def metadata(**values: Any) -> str:
    text = json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"))
    if len(text) > 3000:  # Slack's limit on private_metadata
        raise ValueError("modal metadata too long")
    return text


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = True,
           hint: str | None = None) -> dict[str, Any]:
    block = {"type": "input", "block_id": block_id, "optional": optional,
             "label": _plain(label, 2000), "element": element}
    if hint:
        block["hint"] = _plain(hint, 2000)
    return block


def _text_input(initial: str | None = None, placeholder: str | None = None, multiline=False):
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": multiline}
    if initial:
        element["initial_value"] = initial
    if placeholder:
        element["placeholder"] = _plain(placeholder, 150)
    return element


def _select(options: list[tuple[str, str]], initial: str | None = None) -> dict[str, Any]:
    choices = [{"text": _plain(label), "value": value} for value, label in options[:100]]
    element: dict[str, Any] = {"type": "static_select", "action_id": "value", "options": choices}
    chosen = next((c for c in choices if c["value"] == initial), None)
    if chosen:
        element["initial_option"] = chosen
    return element


def _files(max_files: int, filetypes: tuple[str, ...] = IMAGE_FILETYPES) -> dict[str, Any]:
    return {"type": "file_input", "action_id": "files", "filetypes": list(filetypes),
            "max_files": max_files}


def _common_blocks(methods: list["Method"], method: str | None, prompt: str | None,
                   strength: str | None, options_text: str, presets: list["PresetSummary"],
                   preset: str | None, models: list[str] = (),
                   model: str | None = None) -> list[dict[str, Any]]:
    chosen = next((m for m in methods if m.name == method), None)
    strength_opt = chosen.options.reader("strength") if chosen else None
    strength_hint = (f"{strength_opt.describe_range()}; {chosen.name}'s default is {strength_opt.default}"
                     if strength_opt else "For methods with a strength option (0 = your image as it is).")
    blocks = [
        _input("method", "Method", _select([(m.name, f"{m.name} · {m.title}") for m in methods], method),
               hint="Empty: the preset's method."),
        _input("prompt", "Prompt", _text_input(prompt, "an oil painting in Van Gogh's style"),
               hint="For text-guided methods (" + ", ".join(m.name for m in methods if m.needs_prompt)
               + ")."),
        _input("strength", "Strength", _text_input(strength), hint=strength_hint),
    ]
    if presets:
        blocks.append(_input("preset", "Preset", _select([(p.name, f"{p.name} · {p.method}")
                                                          for p in presets], preset),
                             hint="One of your presets; it fills in the method, options and styles."))
    if models:
        blocks.append(_input("model", "Model (fast)", _select([(m, m) for m in models], model),
                             hint="For fast: a built-in network, or a style you trained with /train "
                                  "(only you see yours)."))
    blocks.append(_input("options", "More options", _text_input(options_text, "seed=7 steps=30"),
                         hint="name=value pairs. " + "  ".join(option_hint(m) for m in methods
                                                               if m.name == method or chosen is None)))
    return blocks


def run_modal(*, methods: list["Method"], method: str | None, prompt: str | None,
              strength: str | None, options_text: str, presets: list["PresetSummary"],
              preset: str | None, meta: str, models: list[str] = (),
              model: str | None = None) -> dict[str, Any]:
    """The form opened when no image was found: a file input and the command's own fields;
    ``models``: the choices of fast's model for this user, their own styles included."""
    chosen = next((m for m in methods if m.name == method), None)
    blocks = [_input("content", "Image or clip to restyle", _files(1, CONTENT_FILETYPES),
                     optional=False, hint="A picture, an animated GIF or a short MP4, WebM or MOV.")]
    blocks += _common_blocks(methods, method, prompt, strength, options_text, presets, preset,
                             models, model)
    if chosen is None or chosen.max_styles:
        blocks.append(_input("styles", "Style image(s)", _files(MAX_STYLE_FILES),
                             hint="For methods that copy the look of a picture."))
    return {"type": "modal", "callback_id": RUN_VIEW, "private_metadata": meta,
            "title": _plain("Restyle an image", 24), "submit": _plain("Restyle", 24),
            "close": _plain("Cancel", 24), "blocks": blocks}


def shortcut_modal(*, images: list[SlackFile], methods: list["Method"], method: str | None,
                   presets: list["PresetSummary"], meta: str,
                   models: list[str] = ()) -> dict[str, Any]:
    """The form of the message shortcut: which of the message's images, and how to restyle it."""
    named = [(f.id, f"{i}. {f.name}") for i, f in enumerate(images, start=1)]
    if len(images) > 1:
        first = [_input("content_pick", "Image to restyle", _select(named, images[0].id), optional=False)]
    else:
        first = [{"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"Restyling *{esc(images[0].name)}*"}]}]
    blocks = first + _common_blocks(methods, method, None, None, "", presets, None, models)
    if len(images) > 1:
        blocks.append(_input("style_pick", "Style image from the message", _select(named),
                             hint="For methods that copy the look of a picture."))
    blocks.append(_input("styles", "Or upload style image(s)", _files(MAX_STYLE_FILES)))
    return {"type": "modal", "callback_id": SHORTCUT_VIEW, "private_metadata": meta,
            "title": _plain("Restyle with Stylebot", 24), "submit": _plain("Restyle", 24),
            "close": _plain("Cancel", 24), "blocks": blocks}


def save_modal(job_id: str, method: str, shown: dict[str, Any], styles: int) -> dict[str, Any]:
    summary = f"{method} {format_options(shown)}" + (f" with {styles} style image(s)" if styles else "")
    return {"type": "modal", "callback_id": SAVE_VIEW, "private_metadata": metadata(job=job_id),
            "title": _plain("Save as preset", 24), "submit": _plain("Save", 24),
            "close": _plain("Cancel", 24), "blocks": [
                {"type": "context", "elements": [{"type": "mrkdwn", "text": esc(summary)[:2900]}]},
                _input("name", "Preset name", _text_input(None, "night-sky"), optional=False,
                       hint="1-32 letters, digits, '-' or '_'. Only you can see and use it."),
                _input("replace", "If you already have a preset of that name",
                       {"type": "checkboxes", "action_id": "value", "options": [
                           {"text": _plain("Replace it"), "value": "replace"}]}),
            ]}


def train_modal(image_name: str, meta: str) -> dict[str, Any]:
    """The form of the *Train a style* shortcut: a name for the style of the message's image."""
    return {"type": "modal", "callback_id": TRAIN_VIEW, "private_metadata": meta,
            "title": _plain("Train a style", 24), "submit": _plain("Train", 24),
            "close": _plain("Cancel", 24), "blocks": [
                {"type": "context", "elements": [
                    {"type": "mrkdwn", "text": f"Learning the style of *{esc(image_name)}*"}]},
                _input("name", "Name", _text_input(None, "starry-night"), optional=False,
                       hint="1-64 letters, digits, '-' or '_'. Only you can use the style: "
                            "/stylize method=fast model=NAME once it is ready."),
            ]}


def saved_view(name: str) -> dict[str, Any]:
    return {"type": "modal", "title": _plain("Preset saved", 24), "close": _plain("Done", 24),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text":
                        f"Saved preset `{esc(name)}`. Use it with `/stylize preset={esc(name)}`."}}]}


def state_values(view: dict[str, Any]) -> dict[str, Any]:
    """A submitted modal's values by block id: text, the selected value, files or checked values."""
    out: dict[str, Any] = {}
    for block_id, actions in (view.get("state", {}).get("values") or {}).items():
        for element in actions.values():
            kind = element.get("type")
            if kind == "file_input":
                out[block_id] = element.get("files") or []
            elif kind == "static_select":
                selected = element.get("selected_option")
                out[block_id] = selected["value"] if selected else None
            elif kind == "checkboxes":
                out[block_id] = [o["value"] for o in element.get("selected_options") or []]
            else:
                value = element.get("value")
                out[block_id] = value.strip() if isinstance(value, str) and value.strip() else None
    return out
