"""Slash commands and mentions, and what every listener shares.

Each Slack entry point becomes the same parsed command and images. Listeners ``ack()`` first
(or answer in the ack when the answer needs no network), then find the image, download it
and hand a ``StyleRequest`` to ``JobFlow``; modals and buttons are in ``ui.py``.
Problems a person can fix are answered to them alone; anything else is logged under a
short reference they are shown.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from slack_sdk.errors import SlackApiError

from engine.errors import UserError
from engine.methods import DEFAULT_METHOD, get_method, method_names
from engine.request import Place as EnginePlace
from engine.request import Requester
from stylebot.commands import (STYLIZE, STYLIZE_ALIASES, CommandError, ParsedCommand, build_request,
                               method_commands, parse_command, parse_flag)
from stylebot.server_settings import show_lines
from stylebot.results import format_options, queue_eta, queue_where, stats_lines, value_text

from . import render as blocks
from .flow import JobFlow, Place
from .training import TrainCommand
from .inputs import (Downloader, FileFinder, SlackFile, foreign_link_error, require_images,
                     split_links)

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from engine.methods.base import Method
    from stylebot.settings import Settings
    from stylebot.service import StyleService

log = logging.getLogger(__name__)

HELP_WORDS = {"help", "methods", "?"}
# "@stylebot sd: oil painting" / "@stylebot adain preset=night": a method name leads the text.
_LEADING_METHOD = re.compile(r"\s*([A-Za-z][\w-]*)\s*:?(?=\s|$)\s*(.*)$", re.S)


@dataclass
class Slash:
    """What every slash command listener reads from Slack's payload."""

    name: str  # without the slash: "stylize", "sd", "preset", ...
    text: str  # the arguments, with Slack file links taken out
    file_ids: list[str]
    foreign: list[str]  # links to anywhere else, refused
    place: Place
    trigger_id: str

    @classmethod
    def from_payload(cls, command: dict[str, Any]) -> "Slash":
        text, file_ids, foreign = split_links(command.get("text") or "")
        place = Place(channel=command.get("channel_id", ""), user=command.get("user_id", ""),
                      thread_ts=command.get("thread_ts"), response_url=command.get("response_url"),
                      user_name=command.get("user_name", ""))
        return cls(name=command.get("command", "/stylize").lstrip("/").lower(), text=text,
                   file_ids=file_ids, foreign=foreign, place=place,
                   trigger_id=command.get("trigger_id", ""))


Answer = Callable[[ParsedCommand, Requester], Awaitable[str]]


class Listeners:
    """Every listener of the Slack app, sharing one flow, file finder and downloader."""

    def __init__(self, service: "StyleService", settings: "Settings", client: "AsyncWebClient",
                 flow: JobFlow, finder: FileFinder, downloader: Downloader) -> None:
        self.service = service
        self.settings = settings
        self.client = client
        self.flow = flow
        self.finder = finder
        self.downloader = downloader
        self.requests = 0
        self.team_id: str | None = None
        self.training = TrainCommand(self)

    def register(self, app) -> None:
        """One listener per slash command; Slack sends only those the app's manifest declares."""
        for name in sorted(STYLIZE_ALIASES) + method_commands():  # /stylize, /sd, /fast, ...
            app.command(f"/{name}")(self.on_stylize)
        app.command("/preset")(self.on_preset)
        app.command("/presets")(self.on_presets)
        app.command("/queue")(self.on_queue)
        app.command("/stats")(self.on_stats)
        app.command("/settings")(self.on_settings)
        app.command("/cancel")(self.on_cancel)
        app.command("/train")(self.training.on_train)
        app.command("/methods")(self.on_help)
        app.command("/help")(self.on_help)
        app.command(re.compile(r"^/"))(self.on_unknown)  # Bolt tries listeners in this order
        app.event("app_mention")(self.on_mention)
        app.error(self.on_error)

    # -- shared pieces -----------------------------------------------------------------------

    @staticmethod
    def requester(place: Place) -> Requester:
        return Requester("slack", place.user, place.user_name)

    @staticmethod
    def methods() -> list["Method"]:
        """The methods that load in this build (one missing module must not hide the rest)."""
        out = []
        for name in method_names():
            try:
                out.append(get_method(name))
            except Exception as exc:  # noqa: BLE001 - reported by `stylebot run`'s checks
                log.debug("method %s unavailable: %s", name, exc)
        return out

    def help_text(self) -> str:
        return blocks.help_text(self.methods(), self.settings.slack_image_window_s)

    async def safely(self, place: Place, work: Awaitable[Any]) -> None:
        """Run ``work``; tell the user what went wrong, privately, and log what is a bug."""
        try:
            await work
        except UserError as exc:
            await self.flow.tell(place, blocks.refused(exc.message))
        except Exception:
            ref = uuid.uuid4().hex[:8]
            self.flow.failures += 1
            log.exception("slack request %s from %s in %s failed", ref, place.user, place.channel)
            await self.flow.tell(place, blocks.bug(ref))

    async def precheck(self, parsed: ParsedCommand, place: Place) -> "Method | None":
        """Refuse what is wrong with the command itself before any file is fetched, with the
        channel's default method and allowed methods (/settings)."""
        if parsed.name != STYLIZE or (parsed.method is None and parsed.preset):
            return None  # a preset decides the method
        return await self.service.check_at(self.requester(place), await self.engine_place(place.channel),
                                           parsed.method, parsed.options, prompt=parsed.prompt)

    async def run(self, parsed: ParsedCommand, place: Place, content: SlackFile,
                  styles: list[SlackFile]) -> None:
        """Download the images and queue the job."""
        image = await self.downloader.fetch(content)
        style_images = [await self.downloader.fetch(f) for f in styles]
        request = build_request(parsed, requester=self.requester(place), content=image,
                                styles=style_images, place=await self.engine_place(place.channel))
        await self.flow.submit(place, request)

    @staticmethod
    def split_images(method: "Method | None", parsed: ParsedCommand,
                     images: list[SlackFile]) -> tuple[SlackFile | None, list[SlackFile]]:
        """The first image is restyled; the next ones are styles, as many as the method takes."""
        if not images:
            return None, []
        styles = images[1:]
        if method is None:
            styles = []  # the preset brings its own style images
        else:
            styles = styles[: method.max_styles]
        return images[0], styles

    # -- slash commands: reading and answering -------------------------------------------------

    def read(self, command: dict[str, Any]) -> Slash:
        self.requests += 1
        self.team_id = self.team_id or command.get("team_id") or None  # spares engine_place a call
        return Slash.from_payload(command)

    @staticmethod
    def parse(slash: Slash) -> ParsedCommand:
        """The command's text, parsed; ``UserError`` for what the person must fix."""
        parsed = parse_command(slash.text, command=slash.name)
        if slash.foreign:
            raise foreign_link_error(slash.foreign)
        return parsed

    @staticmethod
    async def refuse(ack, exc: UserError) -> None:
        await ack(text=blocks.refused(exc.message), response_type="ephemeral")

    async def answer(self, ack, slash: Slash, answer: Awaitable[str]) -> None:
        """Answer in the ack, privately: a mistake is refused, a bug logged under a reference."""
        try:
            text = await answer
        except UserError as exc:
            text = blocks.refused(exc.message)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("slack command %s (ref %s) failed", slash.name, ref)
            text = blocks.bug(ref)
        await ack(text=text, response_type="ephemeral")

    async def quick(self, ack, command: dict[str, Any], answer: Answer) -> None:
        """A command that needs no download: parsed and answered in the ack."""
        slash = self.read(command)
        try:
            parsed = self.parse(slash)
        except UserError as exc:
            await self.refuse(ack, exc)
            return
        await self.answer(ack, slash, answer(parsed, self.requester(slash.place)))

    # -- slash commands: the listeners ---------------------------------------------------------

    async def on_stylize(self, ack, command: dict[str, Any]) -> None:
        """/stylize, its aliases and one command per method: restyle an image."""
        slash = self.read(command)
        if slash.name == STYLIZE and slash.text.lower() in HELP_WORDS:
            await ack(text=self.help_text(), response_type="ephemeral")
            return
        try:
            parsed = self.parse(slash)
            method = await self.precheck(parsed, slash.place)
        except UserError as exc:
            await self.refuse(ack, exc)
            return
        await ack()
        await self.safely(slash.place, self.stylize_command(parsed, slash, method))

    async def on_preset(self, ack, command: dict[str, Any]) -> None:
        """/preset save and use work after the ack; list, show and delete are answered in it."""
        slash = self.read(command)
        try:
            parsed = self.parse(slash)
            method = await self.precheck(parsed, slash.place)  # /preset use's options, before any download
        except UserError as exc:
            await self.refuse(ack, exc)
            return
        if parsed.name == STYLIZE:  # /preset use night is /stylize preset=night
            await ack()
            await self.safely(slash.place, self.stylize_command(parsed, slash, method))
        elif parsed.action == "save":
            await ack()
            await self.safely(slash.place, self.save_preset_command(parsed, slash))
        else:
            await self.answer(ack, slash, self.preset_answer(parsed, self.requester(slash.place)))

    async def on_presets(self, ack, command: dict[str, Any]) -> None:
        await self.quick(ack, command, self.preset_answer)

    async def on_queue(self, ack, command: dict[str, Any]) -> None:
        await self.quick(ack, command, self.queue_answer)

    async def on_stats(self, ack, command: dict[str, Any]) -> None:
        await self.quick(ack, command, self.stats_answer)

    async def on_settings(self, ack, command: dict[str, Any]) -> None:
        slash = self.read(command)
        try:
            parsed = self.parse(slash)
        except UserError as exc:
            await self.refuse(ack, exc)
            return
        await self.answer(ack, slash, self.settings_answer(parsed, self.requester(slash.place),
                                                           slash.place.channel))

    async def on_cancel(self, ack, command: dict[str, Any]) -> None:
        await self.quick(ack, command, self.cancel_answer)

    async def on_help(self, ack, command: dict[str, Any]) -> None:
        """/help and /methods."""
        await self.quick(ack, command, self.help_answer)

    async def on_unknown(self, ack, command: dict[str, Any]) -> None:
        """A command the manifest declares but nothing above takes: the parser names the real ones."""
        await self.quick(ack, command, self.help_answer)

    # -- slash commands: the work ----------------------------------------------------------------

    async def linked_images(self, file_ids: list[str], place: Place) -> list[SlackFile]:
        """The images a user linked, each theirs or shared where they asked."""
        files = [await self.finder.by_id(i, asked_in=(place.channel, place.user)) for i in file_ids]
        return require_images(files, "The linked file")

    async def stylize_command(self, parsed: ParsedCommand, slash: Slash, method: "Method | None") -> None:
        place = slash.place
        linked = await self.linked_images(slash.file_ids, place)
        images = linked or await self.finder.recent_images(place.channel, place.user, place.thread_ts)
        content, styles = self.split_images(method, parsed, images)
        if method is None and linked:
            styles = linked[1:]  # explicit links count even beside a preset
        if content is None or (method is not None and len(styles) < method.min_styles):
            await self.open_run_modal(slash.trigger_id, parsed, place)
            return
        await self.run(parsed, place, content, styles)

    async def open_run_modal(self, trigger_id: str, parsed: ParsedCommand, place: Place) -> None:
        options = dict(parsed.options)
        strength = options.pop("strength", None)
        models = self.service.model_choices(self.requester(place), "fast")
        model = options.pop("model", None) if options.get("model") in models else None
        options_text = " ".join(f"{k}={value_text(v)}" for k, v in options.items())
        presets = await self.service.list_presets(self.requester(place))
        view = blocks.run_modal(
            methods=self.methods(), method=parsed.method or (None if parsed.preset else DEFAULT_METHOD),
            prompt=parsed.prompt, strength=strength, options_text=options_text, presets=presets,
            preset=parsed.preset, meta=blocks.metadata(c=place.channel, t=place.thread_ts,
                                                       w=parsed.style_weights),
            models=models, model=model)
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            log.info("views.open failed: %s", exc.response.get("error"))
            raise UserError("I found no image you shared here in the last "
                            f"{blocks.window_text(self.settings.slack_image_window_s)}: share one (or "
                            "paste its Slack file link) and run the command again.") from None

    async def preset_answer(self, parsed: ParsedCommand, me: Requester) -> str:
        """/presets and /preset list, show and delete."""
        if parsed.action == "show":
            return blocks.preset_details(await self.service.get_preset(me, parsed.target))
        if parsed.action == "delete":
            await self.service.delete_preset(me, parsed.target)
            return f"Deleted your preset `{blocks.esc(parsed.target)}`."
        return blocks.presets_list(await self.service.list_presets(me))

    async def queue_answer(self, parsed: ParsedCommand, me: Requester) -> str:
        jobs = await self.service.queue_status(me)
        if not jobs:
            return "You have no jobs queued or running."
        return "\n".join(f"• `{j.job_id}` {j.method}: {queue_where(j)}"
                         + (f", {queue_eta(j)}" if j.eta_s is not None else "") for j in jobs)

    async def stats_answer(self, parsed: ParsedCommand, me: Requester) -> str:
        await self.require_admin(me.user_id, "see /stats")
        lines = blocks.esc("\n".join(stats_lines(await self.service.stats())).replace("`", "'"))
        return f"*Stylebot stats* (the whole job log)\n```{lines}```"

    async def settings_answer(self, parsed: ParsedCommand, me: Requester, channel: str) -> str:
        """/settings show for anyone; /settings server|channel ... for admins (as /stats)."""
        place = await self.engine_place(channel)
        if parsed.action == "show":
            view = await self.service.place_settings(me, place)
        else:
            await self.require_admin(me.user_id, "change /settings")
            view = await self.service.change_place_settings(me, place, parsed.options,
                                                            whole_space=parsed.action == "server")
        lines = [line.replace("server", "workspace") for line in show_lines(view)]
        return blocks.esc(("Saved.\n" if parsed.action != "show" else "") + "\n".join(lines))

    async def engine_place(self, channel: str) -> EnginePlace:
        """This workspace and ``channel``, for per-place settings; the workspace is the bot
        token's (asked once)."""
        if self.team_id is None:
            self.team_id = (await self.client.auth_test()).get("team_id") or ""
        return EnginePlace(self.team_id, channel)

    async def require_admin(self, user_id: str, doing: str) -> None:
        """Refuse, in one line, anyone who is not an admin by ``is_admin``."""
        if not await self.is_admin(user_id):
            raise UserError("Only workspace admins" + (" and members of the Stylebot admin group"
                                                       if self.settings.slack_admin_group else "")
                            + f" can {doing}.")

    async def is_admin(self, user_id: str) -> bool:
        """Slack's rule for /stats: a workspace admin or owner, or a member of the user group
        named by STYLEBOT_SLACK_ADMIN_GROUP."""
        try:
            user = (await self.client.users_info(user=user_id)).get("user") or {}
            if user.get("is_admin") or user.get("is_owner"):
                return True
            group = self.settings.slack_admin_group
            if not group:
                return False
            members = await self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            raise UserError(f"I could not check who may see /stats (Slack said "
                            f"{exc.response.get('error')}); the app needs the users:read and "
                            "usergroups:read scopes.") from None
        return user_id in (members.get("users") or [])

    async def cancel_answer(self, parsed: ParsedCommand, me: Requester) -> str:
        return f"Cancelling job `{self.service.cancel(me, parsed.target)}`."

    async def help_answer(self, parsed: ParsedCommand, me: Requester) -> str:
        return self.help_text()

    async def save_preset_command(self, parsed: ParsedCommand, slash: Slash) -> None:
        if not parsed.method:
            raise CommandError("/preset save needs a method, e.g. /preset save night method=fast "
                               "model=mosaic strength=0.7.")
        if parsed.prompt:
            raise CommandError("A preset keeps a method, options and style images, not a prompt; "
                               "leave the prompt out.")
        method = get_method(parsed.method)
        options = dict(parsed.options)
        replace = parse_flag("replace", options.pop("replace", None))
        place = slash.place
        files = await self.linked_images(slash.file_ids, place)
        if not files and method.min_styles:
            files = await self.finder.recent_images(place.channel, place.user, place.thread_ts)
            if not files:
                raise UserError(f"Method '{method.name}' needs a style image: share it here first "
                                "(or paste its Slack file link), then run /preset save again.")
        styles = [await self.downloader.fetch(f) for f in files[: method.max_styles]]
        record = await self.service.save_preset(self.requester(place), parsed.target, method.name,
                                                options, styles, parsed.style_weights, replace=replace)
        extra = f" with {len(record.styles)} style image(s)" if record.styles else ""
        await self.flow.tell(place, f"Saved your preset `{blocks.esc(record.name)}`: {record.method} "
                                    f"{blocks.esc(format_options(record.options))}{extra}.")

    # -- mentions ----------------------------------------------------------------------------------------

    async def on_mention(self, event: dict[str, Any], context, request) -> None:
        if request is not None and request.headers.get("x-slack-retry-num"):
            log.info("ignoring Slack's retry of event %s", event.get("event_ts"))
            return  # the first delivery is already being handled
        self.requests += 1
        place = Place(channel=event.get("channel", ""), user=event.get("user", ""),
                      thread_ts=event.get("thread_ts"))
        text = event.get("text") or ""
        bot_user = context.get("bot_user_id")
        if bot_user:
            text = re.sub(rf"<@{re.escape(bot_user)}(\|[^>]*)?>", " ", text)
        await self.safely(place, self.mention(text, event, place))

    async def mention(self, raw_text: str, event: dict[str, Any], place: Place) -> None:
        text, file_ids, foreign = split_links(raw_text)
        attached = require_images(await self.finder.resolve(event.get("files") or []), "Your message")
        if text.lower() in HELP_WORDS or (not text and not attached):
            await self.flow.tell(place, self.help_text())
            return
        if foreign:
            raise foreign_link_error(foreign)
        lead = _LEADING_METHOD.match(text)
        if lead and lead.group(1).lower() in method_names():
            parsed = parse_command(lead.group(2), command=lead.group(1))
        else:
            parsed = parse_command(text, command="stylize")
        method = await self.precheck(parsed, place)
        images = attached or await self.linked_images(file_ids, place)
        images = images or await self.finder.recent_images(place.channel, place.user, place.thread_ts)
        content, styles = self.split_images(method, parsed, images)
        if content is None:
            raise UserError("Attach an image to the message you mention me in (or share one here "
                            "first), e.g. `@stylebot sd: an oil painting`.")
        await self.run(parsed, place, content, styles)

    async def on_error(self, error: Exception, body: dict[str, Any]) -> None:
        self.flow.failures += 1
        log.error("unhandled error in a Slack listener (%s)", body.get("type"),
                  exc_info=(type(error), error, error.__traceback__))
