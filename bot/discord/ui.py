"""Buttons, the preset picker and the save-as-preset form under Stylebot's messages.

Their state lives in the ``custom_id`` (``stylebot:reroll:<job>``, ...) and they are
registered as dynamic items, so a click is understood after a restart too; whatever a
click needs beyond the id (the original request) is looked up through the service, which says
so plainly when it is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from stylebot.service import PresetSummary

# (label, emoji, style) of each result button
BUTTONS = {
    "reroll": ("Re-roll", "🎲", discord.ButtonStyle.primary),
    "stronger": ("Stronger", "➕", discord.ButtonStyle.secondary),
    "weaker": ("Weaker", "➖", discord.ButtonStyle.secondary),
    "save": ("Save as preset", "💾", discord.ButtonStyle.secondary),
    "info": ("Info", "ℹ️", discord.ButtonStyle.secondary),
    "stop": ("Stop refining", "⏹️", discord.ButtonStyle.secondary),
    "delete": ("Delete", "🗑️", discord.ButtonStyle.danger),
}


class ResultButton(discord.ui.DynamicItem[discord.ui.Button],
                   template=r"stylebot:(?P<action>reroll|stronger|weaker|save|info|stop|delete)"
                            r":(?P<job>[0-9a-f]{1,32})(?::(?P<owner>[0-9]{1,20}))?"):
    """One button under a result; the owner's id is kept for Delete only."""

    def __init__(self, action: str, job_id: str, owner_id: int | None = None) -> None:
        label, emoji, style = BUTTONS[action]
        custom_id = f"stylebot:{action}:{job_id}" + (f":{owner_id}" if owner_id else "")
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id))
        self.action = action
        self.job_id = job_id
        self.owner_id = owner_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: Any) -> "ResultButton":
        owner = match["owner"]
        return cls(match["action"], match["job"], int(owner) if owner else None)

    async def callback(self, interaction: discord.Interaction) -> None:
        flow = interaction.client.flow
        async with flow.guard(interaction):
            await flow.on_button(interaction, self.action, self.job_id, self.owner_id)


def result_view(job_id: str, owner_id: int, actions: list[str]) -> discord.ui.View:
    """The result's buttons (the service decides which make sense), then Delete for its owner."""
    view = discord.ui.View(timeout=None)
    for action in actions:
        view.add_item(ResultButton(action, job_id))
    view.add_item(ResultButton("delete", job_id, owner_id))
    return view


class PresetPicker(discord.ui.DynamicItem[discord.ui.Select],
                   template=r"stylebot:pick:(?P<key>[0-9]{1,20})"):
    """The preset menu the message command shows; ``key`` names the image waiting for it."""

    def __init__(self, key: int, options: list[discord.SelectOption]) -> None:
        super().__init__(discord.ui.Select(custom_id=f"stylebot:pick:{key}", placeholder="Choose a preset",
                                           min_values=1, max_values=1, options=options))
        self.key = key

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Select,
                             match: Any) -> "PresetPicker":
        return cls(int(match["key"]), list(item.options))

    async def callback(self, interaction: discord.Interaction) -> None:
        flow = interaction.client.flow
        async with flow.guard(interaction):
            await flow.on_pick(interaction, self.key, self.item.values[0])


def picker_view(key: int, presets: list["PresetSummary"]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    options = [discord.SelectOption(label=p.name, value=p.name,
                                    description=f"{p.method}, {p.style_count} style image(s)"[:100])
               for p in presets[:25]]
    view.add_item(PresetPicker(key, options))
    return view


class SavePresetModal(discord.ui.Modal, title="Save as preset"):
    """Asks for the new preset's name; everything else comes from the result."""

    name: discord.ui.TextInput = discord.ui.TextInput(
        label="Preset name", placeholder="letters, digits, - or _", min_length=1, max_length=32)

    def __init__(self, job_id: str) -> None:
        super().__init__(custom_id=f"stylebot:savepreset:{job_id}", timeout=900)
        self.job_id = job_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        flow = interaction.client.flow
        async with flow.guard(interaction):
            await flow.save_from_result(interaction, self.job_id, self.name.value)
