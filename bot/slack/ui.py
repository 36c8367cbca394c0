"""Modals, the message shortcut and the buttons under results.

Form mistakes are shown under the field (``response_action: errors``) so the form stays
open; everything else is ``ack()``-ed at once and carried out like a slash command.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

from stylebot.commands import ParsedCommand, parse_command
from stylebot.service import InputError
from engine.errors import OptionError, UserError
from engine.methods import DEFAULT_METHOD, get_method

from . import render as blocks
from .inputs import require_images
from stylebot.results import changed_options, read_settings, reuse_command
from .flow import Place

if TYPE_CHECKING:
    from engine.request import Requester

    from .commands import Listeners


class Forms:
    """The listeners for interactivity: view submissions, the shortcut and button clicks."""

    def __init__(self, core: "Listeners") -> None:
        self.core = core

    def register(self, app) -> None:
        app.shortcut(blocks.SHORTCUT_ID)(self.on_shortcut)
        app.shortcut(blocks.INFO_SHORTCUT_ID)(self.on_info_shortcut)
        app.view(blocks.RUN_VIEW)(self.on_run_view)
        app.view(blocks.SHORTCUT_VIEW)(self.on_shortcut_view)
        app.view(blocks.SAVE_VIEW)(self.on_save_view)
        app.shortcut(blocks.TRAIN_SHORTCUT_ID)(self.on_train_shortcut)
        app.view(blocks.TRAIN_VIEW)(self.on_train_view)
        app.action(re.compile(r"^stylebot_"))(self.on_button)

    # -- modals ---------------------------------------------------------------------------------------

    def parse_form(self, values: dict[str, Any], n_styles: int,
                   requester: Requester | None = None) -> ParsedCommand:
        """A submitted form as the command it stands for; ``InputError`` names the bad field.
        ``requester``: whose own trained styles the Model field may name."""
        method = values.get("method")
        try:
            parsed = parse_command(values.get("options") or "", command=method or "stylize")
        except UserError as exc:
            raise InputError("options", exc.message) from None
        if parsed.prompt:
            raise InputError("options", f"I don't know what '{parsed.prompt[:40]}' means here; "
                                        "write options as name=value (the prompt has its own field).")
        parsed.prompt = values.get("prompt")
        parsed.preset = values.get("preset") or parsed.preset
        if values.get("strength") is not None:
            chosen = get_method(method or DEFAULT_METHOD)
            reader = chosen.options.reader("strength")  # gatys reads it as its style_weight slider
            if reader is None:
                raise InputError("strength", f"Method '{chosen.name}' has no strength option; "
                                             "leave this empty.")
            try:
                reader.parse(values["strength"])
            except OptionError as exc:
                raise InputError("strength", exc.message) from None
            target = chosen.options.target("strength")
            if any(chosen.options.target(name) is target for name in parsed.options):
                raise InputError("options", "Strength is given twice; keep only the Strength field.")
            parsed.options["strength"] = values["strength"]
        if values.get("model") is not None:
            if "model" in parsed.options:
                raise InputError("options", "Model is given twice; keep only the Model field.")
            parsed.options["model"] = values["model"]
        if parsed.method or not parsed.preset:  # with a preset and no method, the preset decides
            self.core.service.check(parsed.method, parsed.options, prompt=parsed.prompt,
                                    n_styles=None if parsed.preset else n_styles,
                                    requester=requester)
        return parsed

    @staticmethod
    def form_place(body: dict[str, Any], meta: dict[str, Any]) -> Place:
        user = body.get("user") or {}
        return Place(channel=meta.get("c", ""), user=user.get("id", ""), thread_ts=meta.get("t"),
                     user_name=user.get("username") or user.get("name") or "")

    async def on_run_view(self, ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        self.core.requests += 1
        values = blocks.state_values(view)
        meta = json.loads(view.get("private_metadata") or "{}")
        place = self.form_place(body, meta)
        try:
            parsed = self.parse_form(values, len(values.get("styles") or []),
                                     self.core.requester(place))
            parsed.style_weights = meta.get("w")
        except InputError as exc:
            await ack(response_action="errors", errors={exc.field: exc.message[:300]})
            return
        await ack()

        async def work() -> None:
            content = require_images(await self.core.finder.resolve(values.get("content") or []),
                                     "The uploaded file")
            styles = require_images(await self.core.finder.resolve(values.get("styles") or []),
                                    "The style upload")
            if not content:
                raise UserError("Pick the image to restyle.")
            await self.core.run(parsed, place, content[0], styles)

        await self.core.safely(place, work())

    @staticmethod
    def shortcut_place(shortcut: dict[str, Any]) -> Place:
        message = shortcut.get("message") or {}
        user = shortcut.get("user") or {}
        return Place(channel=(shortcut.get("channel") or {}).get("id", ""), user=user.get("id", ""),
                     thread_ts=message.get("thread_ts") or message.get("ts"),
                     response_url=shortcut.get("response_url"),
                     user_name=user.get("username") or user.get("name", ""))

    async def on_info_shortcut(self, ack, shortcut: dict[str, Any]) -> None:
        """*Stylebot info*: the settings inside the message's image, told privately."""
        self.core.requests += 1
        await ack()
        message = shortcut.get("message") or {}
        place = self.shortcut_place(shortcut)

        async def work() -> None:
            images = require_images(await self.core.finder.resolve(message.get("files") or []),
                                    "That message")
            if not images:
                raise UserError("That message has no image; use *Stylebot info* on a Stylebot result.")
            for image in images[:10]:
                upload = await self.core.downloader.fetch(image)
                settings = await asyncio.to_thread(read_settings, upload.data)
                if settings is not None:
                    await self.core.flow.tell(place, blocks.settings_text(settings, reuse_command(settings)))
                    return
            raise UserError("That image carries no Stylebot settings: only results Stylebot posted do.")

        await self.core.safely(place, work())

    async def on_shortcut(self, ack, shortcut: dict[str, Any]) -> None:
        self.core.requests += 1
        await ack()
        message = shortcut.get("message") or {}
        place = self.shortcut_place(shortcut)

        async def work() -> None:
            files = await self.core.finder.resolve(message.get("files") or [])
            images = require_images(files, "That message")
            if not images:
                raise UserError("That message has no image; use *Restyle with Stylebot* on a message "
                                "with an image.")
            images = images[:10]
            me = self.core.requester(place)
            presets = await self.core.service.list_presets(me)
            view = blocks.shortcut_modal(
                images=images, methods=self.core.methods(), method=DEFAULT_METHOD, presets=presets,
                meta=blocks.metadata(c=place.channel, t=place.thread_ts, f=[f.id for f in images]),
                models=self.core.service.model_choices(me, "fast"))
            await self.core.client.views_open(trigger_id=shortcut.get("trigger_id", ""), view=view)

        await self.core.safely(place, work())

    async def on_shortcut_view(self, ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        self.core.requests += 1
        values = blocks.state_values(view)
        meta = json.loads(view.get("private_metadata") or "{}")
        place = self.form_place(body, meta)
        picked_style = values.get("style_pick")
        uploaded = values.get("styles") or []
        try:
            parsed = self.parse_form(values, len(uploaded) + (1 if picked_style else 0),
                                     self.core.requester(place))
        except InputError as exc:
            await ack(response_action="errors", errors={exc.field: exc.message[:300]})
            return
        await ack()

        async def work() -> None:
            content = await self.core.finder.by_id(values.get("content_pick") or meta["f"][0])
            styles = [await self.core.finder.by_id(picked_style)] if picked_style else []
            styles += await self.core.finder.resolve(uploaded)
            await self.core.run(parsed, place, content, require_images(styles, "The style upload"))

        await self.core.safely(place, work())

    async def on_train_shortcut(self, ack, shortcut: dict[str, Any]) -> None:
        """*Train a style* on a message: a form asking for the name (``training.py`` does the rest)."""
        self.core.requests += 1
        await ack()
        message = shortcut.get("message") or {}
        place = self.shortcut_place(shortcut)

        async def work() -> None:
            images = require_images(await self.core.finder.resolve(message.get("files") or []),
                                    "That message")
            if not images:
                raise UserError("That message has no image; use *Train a style* on a message "
                                "with the image whose style you want.")
            view = blocks.train_modal(images[0].name, blocks.metadata(
                c=place.channel, t=place.thread_ts, f=images[0].id))
            await self.core.client.views_open(trigger_id=shortcut.get("trigger_id", ""), view=view)

        await self.core.safely(place, work())

    async def on_train_view(self, ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        self.core.requests += 1
        values = blocks.state_values(view)
        meta = json.loads(view.get("private_metadata") or "{}")
        place = self.form_place(body, meta)
        name = values.get("name") or ""
        try:
            self.core.service.check_training(self.core.requester(place), name)
        except UserError as exc:
            await ack(response_action="errors", errors={"name": exc.message[:300]})
            return
        await ack()

        async def work() -> None:
            style = await self.core.finder.by_id(meta.get("f", ""))
            await self.core.training.begin(name.strip(), place, style)

        await self.core.safely(place, work())

    async def on_save_view(self, ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = blocks.state_values(view)
        meta = json.loads(view.get("private_metadata") or "{}")
        place = self.form_place(body, meta)
        try:
            record = await self.core.service.save_result(
                meta.get("job", ""), self.core.requester(place), values.get("name") or "",
                replace="replace" in (values.get("replace") or []))
        except UserError as exc:
            await ack(response_action="errors", errors={"name": exc.message[:300]})
            return
        await ack(response_action="update", view=blocks.saved_view(record.name))

    # -- buttons ---------------------------------------------------------------------------------------

    async def on_button(self, ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        self.core.requests += 1
        await ack()
        container = body.get("container") or {}
        user = body.get("user") or {}
        place = Place(channel=(body.get("channel") or {}).get("id") or container.get("channel_id", ""),
                      user=user.get("id", ""), thread_ts=container.get("thread_ts"),
                      response_url=body.get("response_url"),
                      user_name=user.get("username") or user.get("name") or "")
        await self.core.safely(place, self.button(action.get("action_id", ""), action.get("value", ""),
                                                  place, body.get("trigger_id", "")))

    async def button(self, kind: str, job_id: str, place: Place, trigger_id: str) -> None:
        if kind == blocks.CANCEL:
            cancelled = self.core.service.cancel(self.core.requester(place), job_id)
            await self.core.flow.tell(place, f"Cancelling job `{cancelled}`.")
            return
        action = kind.removeprefix(blocks.ACTION_PREFIX)
        requester = self.core.requester(place)
        if kind == blocks.INFO:
            await self.core.flow.tell(place, blocks.info_text(
                await self.core.service.result_info(job_id, requester)))
            return
        if kind == blocks.STOP:
            await self.core.service.stop_refining(job_id, requester)
            await self.core.flow.tell(place, "Stopping the refinement; the draft stays.")
            return
        result = await self.core.service.check_click(job_id, action, requester)  # before any form or job
        if kind == blocks.SAVE:
            meta = result.meta
            options = changed_options(get_method(meta.method).options, meta.options)
            await self.core.client.views_open(trigger_id=trigger_id, view=blocks.save_modal(
                job_id, meta.method, options, len(result.request.styles)))
            return
        await self.core.flow.start(place, lambda: self.core.service.rerun(job_id, action, requester))
