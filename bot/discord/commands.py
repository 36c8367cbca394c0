"""Stylebot's slash commands and message command, as discord.py ``app_commands``.

Each command is a typed signature that discord.py parses and checks, and its docstring is its
description; the bodies are short and hand off to one request builder (``_stylize``) and the
``InteractionFlow``, which they reach through ``interaction.client``. Option names are the
methods' own option names, and whether an option applies is decided by the chosen method's
declarations, never by a list kept here.
"""

import io
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from engine.errors import UserError
from engine.methods import DEFAULT_METHOD, method_names
from engine.request import StyleRequest

from stylebot.refine import QUALITIES
from stylebot.results import format_options
from stylebot.server_settings import EPHEMERAL, PUBLIC, show_lines

from . import render
from .inputs import merge_options, parse_extra_options, place_of, requester_of
from .training import start_training

if TYPE_CHECKING:
    from engine.queue import JobHandle

MESSAGE_COMMAND = "Stylize with preset…"
INFO_COMMAND = "Stylebot info"

DESCRIBE_OPTIONS = dict(
    strength="How much style, 0..1 (every method but nada; gatys: its style_weight slider)",
    style_weight="How much style versus content (gatys; strength sets it too)",
    preserve_color="Keep the photo's colours; take only texture from the style",
    size="Longest side of the result in pixels",
    seed="Random seed, to repeat a result exactly",
    options="More options as name=value, e.g. model=26:7 preserve_color=true (see /methods)",
)


# -- autocomplete ------------------------------------------------------------------------------

async def preset_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The user's presets whose names contain what they have typed."""
    presets = await interaction.client.service.list_presets(requester_of(interaction.user))
    text = current.strip().lower()
    return [app_commands.Choice(name=f"{p.name} ({p.method})", value=p.name)
            for p in presets if text in p.name.lower()][:25]


async def job_ids(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The user's jobs whose ids start with what they have typed, with where each one is."""
    jobs = interaction.client.service.jobs_of(requester_of(interaction.user))
    return [app_commands.Choice(name=f"{j.job_id} ({j.method}, {'running' if j.position == 0 else f'#{j.position}'})",
                                value=j.job_id) for j in jobs if j.job_id.startswith(current.strip())][:25]


async def model_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The models of the chosen method (fast by default) this user may name: the server's and
    their own trained styles, never anyone else's."""
    method = getattr(interaction.namespace, "method", None) or "fast"
    try:
        names = interaction.client.service.model_choices(requester_of(interaction.user), method,
                                                         current)
    except UserError:  # a method that does not exist: nothing to offer
        return []
    return [app_commands.Choice(name=n, value=n) for n in names][:25]


# -- restyling ---------------------------------------------------------------------------------

@app_commands.command()
@app_commands.describe(content="The image, animation or short video to restyle", style="A style image (methods that take one)",
                       style2="A second style image to blend", method=f"The method (default {DEFAULT_METHOD})",
                       preset="One of your presets; its settings fill what you leave out",
                       prompt="Text prompt (sd, nada)",
                       model="Style network (fast): a built-in one or one you trained with /train",
                       quality="refine: a draft within seconds, then gatys refines it (gatys only)",
                       **DESCRIBE_OPTIONS)
@app_commands.autocomplete(preset=preset_names, model=model_names)
@app_commands.choices(quality=[app_commands.Choice(name=q, value=q) for q in QUALITIES])
async def stylize(interaction: discord.Interaction, content: discord.Attachment,
                  style: discord.Attachment | None = None, style2: discord.Attachment | None = None,
                  method: str | None = None, preset: str | None = None,
                  strength: float | None = None, style_weight: float | None = None,
                  preserve_color: bool | None = None, size: int | None = None,
                  prompt: str | None = None, seed: int | None = None,
                  options: str | None = None, model: str | None = None,
                  quality: str | None = None) -> None:
    """Restyle an image with neural style transfer."""
    typed = dict(strength=strength, style_weight=style_weight, preserve_color=preserve_color,
                 size=size, seed=seed, model=model, quality=quality)
    extra, blend = parse_extra_options(options)
    await _stylize(interaction, method=method, preset=preset, content=content,
                   styles=[s for s in (style, style2) if s is not None], prompt=prompt,
                   options=merge_options(typed, extra), style_weights=blend)


@app_commands.command()
@app_commands.describe(image="The image to repaint", prompt="What it should become",
                       negative_prompt="What to steer away from",
                       strength="How far to move from your image",
                       guidance_scale="How closely to follow the prompt",
                       steps="Denoising steps", seed=DESCRIBE_OPTIONS["seed"],
                       options=DESCRIBE_OPTIONS["options"])
@app_commands.rename(negative_prompt="negative", guidance_scale="guidance")
async def sd(interaction: discord.Interaction, image: discord.Attachment, prompt: str,
             negative_prompt: str | None = None, strength: float | None = None,
             guidance_scale: float | None = None, steps: int | None = None,
             seed: int | None = None, options: str | None = None) -> None:
    """Repaint an image from a text prompt with Stable Diffusion."""
    typed = dict(negative_prompt=negative_prompt, strength=strength, guidance_scale=guidance_scale,
                 steps=steps, seed=seed)
    extra, _ = parse_extra_options(options)
    await _stylize(interaction, method="sd", preset=None, content=image, styles=[],
                   prompt=prompt, options=merge_options(typed, extra))


@app_commands.command()
@app_commands.describe(image="The image to restyle", prompt="The style, in words",
                       options=DESCRIBE_OPTIONS["options"])
async def nada(interaction: discord.Interaction, image: discord.Attachment, prompt: str,
               options: str | None = None) -> None:
    """Restyle a face photo from a text description with StyleGAN-NADA."""
    extra, _ = parse_extra_options(options)
    await _stylize(interaction, method="nada", preset=None, content=image, styles=[],
                   prompt=prompt, options=extra)


@app_commands.command()
@app_commands.describe(style="The image whose style to learn",
                       name="A name for your style: letters, digits, - or _")
async def train(interaction: discord.Interaction, style: discord.Attachment,
                name: app_commands.Range[str, 1, 64]) -> None:
    """Train your own fast style from an image; it runs between other jobs, only you can use it."""
    await start_training(interaction.client.flow, interaction, style, name)


async def own_style_names(interaction: discord.Interaction,
                          current: str) -> list[app_commands.Choice[str]]:
    """The user's own trained styles whose names contain what they have typed."""
    text = current.strip().lower()
    names = interaction.client.service.trained_styles(requester_of(interaction.user))
    return [app_commands.Choice(name=n, value=n) for n in names if text in n.lower()][:25]


@app_commands.command(name="delete-style")
@app_commands.describe(name="One of your styles from /train")
@app_commands.autocomplete(name=own_style_names)
async def delete_style(interaction: discord.Interaction, name: str) -> None:
    """Delete one of the styles you trained with /train."""
    interaction.client.service.delete_trained_style(requester_of(interaction.user), name)
    await interaction.response.send_message(f"🗑️ Deleted your style **{name.strip()}**.",
                                            ephemeral=True)


@app_commands.context_menu(name=MESSAGE_COMMAND)
async def stylize_message(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.client.flow.offer_presets(interaction, message)


@app_commands.context_menu(name=INFO_COMMAND)
async def info_message(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.client.flow.show_settings(interaction, message)


async def _stylize(interaction: discord.Interaction, *, method: str | None, preset: str | None,
                   content: discord.Attachment, styles: list[discord.Attachment], prompt: str | None,
                   options: dict[str, Any], style_weights: list[float] | None = None) -> None:
    """The one path from a command's fields to a queued job; cheap refusals come first."""
    flow = interaction.client.flow
    flow.check(content, "content image", clips=True)
    for i, attachment in enumerate(styles):
        flow.check(attachment, _style_word(i, len(styles)))
    preset = preset.strip() if preset and preset.strip() else None
    requester = requester_of(interaction.user)
    if method or not preset:  # with a preset and no method, the preset decides what applies
        await flow.service.check_at(requester, place_of(interaction), method, options, prompt=prompt,
                                    n_styles=len(styles))

    async def submit() -> "JobHandle":
        uploads = [await flow.fetch(a, _style_word(i, len(styles))) for i, a in enumerate(styles)]
        return await flow.service.submit(StyleRequest(
            method=method, content=await flow.fetch(content, "content image"), requester=requester,
            styles=uploads, style_weights=style_weights, prompt=prompt, options=options, preset=preset,
            place=place_of(interaction)))

    await flow.start(interaction, submit)


def _style_word(i: int, n: int) -> str:
    return "style image" if n == 1 else f"style image {i + 1}"


# -- presets -----------------------------------------------------------------------------------

class PresetGroup(app_commands.Group, name="preset"):
    """Save, list, show, use and delete your presets

    Every answer is ephemeral: a user's presets are theirs alone.
    """

    @app_commands.command()
    @app_commands.describe(name="A name: letters, digits, - or _", method="The method it uses",
                           style="A style image to keep with it", style2="A second style image",
                           replace="Overwrite your preset of the same name", **DESCRIBE_OPTIONS)
    async def save(self, interaction: discord.Interaction, name: str, method: str,
                   style: discord.Attachment | None = None, style2: discord.Attachment | None = None,
                   strength: float | None = None, style_weight: float | None = None,
                   preserve_color: bool | None = None, size: int | None = None,
                   seed: int | None = None, options: str | None = None,
                   replace: bool = False) -> None:
        """Save a method, its options and style images under a name, for you only."""
        typed = dict(strength=strength, style_weight=style_weight, preserve_color=preserve_color,
                     size=size, seed=seed)
        extra, blend = parse_extra_options(options)
        await _save_preset(interaction, name, method, [s for s in (style, style2) if s is not None],
                           merge_options(typed, extra), blend, replace=replace)

    @app_commands.command(name="list")
    async def list_presets(self, interaction: discord.Interaction) -> None:
        """List your presets (only you see them)."""
        presets = await interaction.client.service.list_presets(requester_of(interaction.user))
        await interaction.response.send_message(render.presets_text(presets), ephemeral=True)

    @app_commands.command()
    @app_commands.describe(name="One of your presets")
    @app_commands.autocomplete(name=preset_names)
    async def show(self, interaction: discord.Interaction, name: str) -> None:
        """Show one of your presets with its style images."""
        record = await interaction.client.service.get_preset(requester_of(interaction.user), name)
        files = [discord.File(io.BytesIO(s.data), s.filename) for s in record.styles]
        if sum(len(s.data) for s in record.styles) > interaction.filesize_limit:
            files = []  # the description alone is still an answer
        await interaction.response.send_message(embed=render.preset_embed(record), files=files, ephemeral=True)

    @app_commands.command()
    @app_commands.describe(name="One of your presets")
    @app_commands.autocomplete(name=preset_names)
    async def delete(self, interaction: discord.Interaction, name: str) -> None:
        """Delete one of your presets."""
        await interaction.client.service.delete_preset(requester_of(interaction.user), name)
        await interaction.response.send_message(f"🗑️ Deleted preset **{name.strip()}**.", ephemeral=True)

    @app_commands.command()
    @app_commands.describe(name="One of your presets", content="The image to restyle")
    @app_commands.autocomplete(name=preset_names)
    async def use(self, interaction: discord.Interaction, name: str, content: discord.Attachment) -> None:
        """Restyle an image with one of your presets."""
        await _stylize(interaction, method=None, preset=name, content=content, styles=[],
                       prompt=None, options={})


async def _save_preset(interaction: discord.Interaction, name: str, method: str,
                       styles: list[discord.Attachment], options: dict[str, Any],
                       style_weights: list[float] | None, *, replace: bool) -> None:
    """Refuse a preset that cannot work before deferring; then download its styles and save it."""
    flow = interaction.client.flow
    chosen = flow.service.check_preset(method, options, n_styles=len(styles),
                                       requester=requester_of(interaction.user))
    for i, attachment in enumerate(styles):
        flow.check(attachment, _style_word(i, len(styles)))
    await interaction.response.defer(ephemeral=True, thinking=True)
    uploads = [await flow.fetch(a, _style_word(i, len(styles))) for i, a in enumerate(styles)]
    record = await flow.service.save_preset(requester_of(interaction.user), name, chosen.name, options,
                                            uploads, style_weights, replace=replace)
    await interaction.edit_original_response(
        content=f"💾 Saved preset **{record.name}** ({record.method}, "
                f"{format_options(record.options)}, {len(record.styles)} style image(s)).")


# -- information -------------------------------------------------------------------------------

@app_commands.command()
async def methods(interaction: discord.Interaction) -> None:
    """What each method does, its options, and whether it can run here."""
    info = interaction.client.service.methods_info()
    chunks = render.chunk_embeds([render.method_embed(m) for m in info])
    await interaction.response.send_message(embeds=chunks[0], ephemeral=True)
    for chunk in chunks[1:]:
        await interaction.followup.send(embeds=chunk, ephemeral=True)


@app_commands.command()
async def queue(interaction: discord.Interaction) -> None:
    """Your jobs, their places in the queue and when they should be done."""
    jobs = await interaction.client.service.queue_status(requester_of(interaction.user))
    await interaction.response.send_message(render.queue_text(jobs), ephemeral=True)


@app_commands.command()
@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
@app_commands.describe(days="Only jobs of the last this many days (default: the whole log)")
async def stats(interaction: discord.Interaction, days: app_commands.Range[int, 1, 3650] | None = None) -> None:
    """Jobs per method, run times and failures, from the job log (Manage Server only)."""
    require_manage_server(interaction, "see /stats")
    report = await interaction.client.service.stats(since_days=days)
    await interaction.response.send_message(render.stats_text(report, days), ephemeral=True)


def require_manage_server(interaction: discord.Interaction, doing: str) -> None:
    """Discord's admin rule (/stats, /settings): the Manage Server permission, checked again
    here because a server may grant the command itself to anyone."""
    if interaction.permissions is None or not interaction.permissions.manage_guild:
        raise UserError(f"Only members with the Manage Server permission can {doing}.")


class SettingsGroup(app_commands.Group, name="settings", guild_only=True,
                    default_permissions=discord.Permissions(manage_guild=True)):
    """This server's and channel's defaults and limits (Manage Server only)"""

    @app_commands.command()
    async def show(self, interaction: discord.Interaction) -> None:
        """Show this server's and this channel's settings, and what is in force here."""
        view = await interaction.client.service.place_settings(requester_of(interaction.user),
                                                               place_of(interaction))
        await interaction.response.send_message("\n".join(show_lines(view)), ephemeral=True)

    @app_commands.command(name="set")
    @app_commands.describe(
        where="The whole server, or only this channel (wins over the server's)",
        method="Default method where the user names none ('default' clears it)",
        size="Default longest side in pixels where the user gives none",
        methods="Allowed methods, comma-separated, or 'all'",
        jobs_per_user="Most jobs one member may have queued or running in this server",
        sd="Whether sd (Stable Diffusion) may run here",
        results="Results for the channel (public) or only their asker (ephemeral)",
        clear="Settings to clear (inherit again), comma-separated, e.g. size,sd")
    @app_commands.choices(
        where=[app_commands.Choice(name=n, value=n) for n in ("server", "channel")],
        results=[app_commands.Choice(name=n, value=n) for n in (PUBLIC, EPHEMERAL)])
    async def set_(self, interaction: discord.Interaction, where: str, method: str | None = None,
                   size: app_commands.Range[int, 64, 4096] | None = None, methods: str | None = None,
                   jobs_per_user: app_commands.Range[int, 1, 100] | None = None, sd: bool | None = None,
                   results: str | None = None, clear: str | None = None) -> None:
        """Set defaults and limits for this server or this channel."""
        require_manage_server(interaction, "change /settings")
        given = {name: value for name, value in dict(
            method=method, size=size, methods=methods, jobs_per_user=jobs_per_user,
            sd=None if sd is None else ("yes" if sd else "no"), results=results).items()
            if value is not None}
        for name in (clear or "").replace(" ", ",").split(","):
            if name.strip():
                given[name.strip()] = "default"
        view = await interaction.client.service.change_place_settings(
            requester_of(interaction.user), place_of(interaction), given, whole_space=where == "server")
        await interaction.response.send_message("⚙️ Saved.\n" + "\n".join(show_lines(view)),
                                                ephemeral=True)


@app_commands.command()
@app_commands.describe(job="The job id (default: your newest job)")
@app_commands.autocomplete(job=job_ids)
async def cancel(interaction: discord.Interaction, job: str | None = None) -> None:
    """Cancel one of your queued or running jobs."""
    job_id = interaction.client.service.cancel(requester_of(interaction.user), job)
    await interaction.response.send_message(f"🛑 Cancelling job `{job_id}`.", ephemeral=True)


# -- the tree ----------------------------------------------------------------------------------

class StylebotTree(app_commands.CommandTree):
    """Stylebot's commands; every command failure is reported to its user and the log."""

    def __init__(self, client: discord.Client) -> None:
        super().__init__(client)
        presets = PresetGroup()
        # The method choices are the registry as it is now, when the client is built, rather
        # than when this module was imported (a method may be registered in between).
        choices = [app_commands.Choice(name=name, value=name) for name in method_names()]
        for command in (stylize, presets.save):
            app_commands.choices(method=choices)(command)
        for command in (stylize, sd, nada, train, delete_style, presets, methods, queue, stats, SettingsGroup(),
                        cancel, stylize_message, info_message):
            self.add_command(command)

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await self.client.flow.report(interaction, error)
