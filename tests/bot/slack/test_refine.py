"""/stylize quality=refine on Slack: the draft is delivered at once with Stop refining under it,
then its summary message is edited in place (chat.update) with the refinement's progress and
the refined picture; Stop (its owner only) keeps the draft. Stand-ins take hub's and gatys'
places (tests/stylebot/refine_toys.py)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from bot.slack import render as blocks
from tests.engine.conftest import png_bytes
from tests.stylebot import refine_toys

RED = (200, 30, 30)


@pytest.fixture
def refine_methods(slack_toys, monkeypatch):
    refine_toys.register(monkeypatch)
    yield refine_toys
    refine_toys.unregister()


async def draft_delivered(slack, fake, text="quality=refine"):
    refine_toys.GATE.clear()  # the refinement holds until the test lets it go
    fake.share("C1", "U1", [fake.add_file(png_bytes((64, 48), RED), "photo.png"),
                            fake.add_file(png_bytes((20, 20), (0, 0, 200)), "style.png")])
    await slack.command("/stylize", text)
    [summary] = await fake.delivered()
    return summary


def buttons(summary_blocks) -> list[str]:
    return [e["action_id"] for b in summary_blocks if b["type"] == "actions" for e in b["elements"]]


def status(summary_blocks) -> str:
    return next(b["elements"][0]["text"] for b in summary_blocks
                if b["type"] == "context" and "Draft" in b["elements"][0]["text"])


async def test_refine_edits_the_drafts_summary_with_progress_then_the_refined_picture(
        slack, fake, refine_methods):
    summary = await draft_delivered(slack, fake, "quality=refine iterations=5")
    posted = fake.called("chat.postMessage")[-1].args["blocks"]  # as first posted, before edits
    posted = json.loads(posted) if isinstance(posted, str) else posted
    assert buttons(posted) == [blocks.STOP]
    assert status(posted) == "Draft. Refining with gatys: queued…"
    assert "Restyled with hub" in posted[0]["text"]["text"]
    draft = fake.result_image(0).convert("RGB")
    assert draft.getpixel((3, 3)) == tuple(255 - c for c in RED)

    refine_toys.GATE.set()
    edits = await fake.wait_for(lambda: [e for e in fake.posted[summary["ts"]]["edits"]
                                         if any(b["type"] == "image" for b in e["blocks"])],
                                what="the refined picture")
    final = edits[-1]["blocks"]
    assert "Restyled with gatys" in final[0]["text"]["text"]
    assert "iterations=5" in final[1]["elements"][0]["text"]
    assert buttons(final) == [blocks.REROLL, blocks.STRONGER, blocks.WEAKER, blocks.SAVE, blocks.INFO]
    file_id = next(b["slack_file"]["id"] for b in final if b["type"] == "image")
    assert fake.files[file_id]["channel"] is None  # shown by the message, not posted beside it
    refined = Image.open(io.BytesIO(fake.uploads[file_id])).convert("RGB")
    assert max(abs(a - (b + 128) / 2) for a, b in zip(refined.getpixel((3, 3)),
                                                       draft.getpixel((3, 3)))) <= 1  # from the draft
    progress = [status(e["blocks"]) for e in fake.posted[summary["ts"]]["edits"][:-1]]
    assert progress and all(p.startswith("Draft. Refining with gatys") for p in progress)
    assert len(fake.results()) == 1  # one summary message all along, edited in place


async def test_refine_stop_keeps_the_draft_with_its_own_buttons(slack, fake, refine_methods):
    summary = await draft_delivered(slack, fake)
    draft_job = summary["blocks"][-1]["block_id"].removeprefix("result_")
    await slack.click(summary["ts"], blocks.STOP, draft_job)
    kept = await fake.wait_for(lambda: [e for e in fake.posted[summary["ts"]]["edits"]
                                        if "Draft kept" in str(e["blocks"])], what="the kept draft")
    final = kept[-1]["blocks"]
    assert status(final) == "Draft kept as the result (refining stopped)."
    assert buttons(final) == [blocks.WEAKER, blocks.SAVE, blocks.INFO]  # hub's, at full strength
    assert all(e["value"] == draft_job for b in final if b["type"] == "actions" for e in b["elements"])
    assert not any(b["type"] == "image" for b in final)
    assert "Stopping the refinement; the draft stays." in fake.ephemeral_texts()


async def test_refine_someone_else_cannot_stop_it(slack, fake, refine_methods):
    summary = await draft_delivered(slack, fake)
    draft_job = summary["blocks"][-1]["block_id"].removeprefix("result_")
    await slack.click(summary["ts"], blocks.STOP, draft_job, user="U2")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert "Only the person who asked for this picture can stop refining it." in texts[0]
    assert slack.bot.flow.service.refinement(draft_job).active
    refine_toys.GATE.set()
    await fake.wait_for(lambda: any(b["type"] == "image" for b in fake.posted[summary["ts"]]["blocks"]),
                        what="the refined picture")
