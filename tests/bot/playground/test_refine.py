"""quality:refine in the playground: one event stream shows the draft's result, then names the
refinement and follows it to the refined result; Stop refining ends it with the draft kept.
Stand-ins take hub's and gatys' places (tests/stylebot/refine_toys.py)."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from tests.bot.helpers import bot_settings, form, png_bytes, running_bot, sse_events
from tests.stylebot import refine_toys

RED = (200, 30, 30)


@pytest.fixture
def refine_settings(settings, monkeypatch):
    refine_toys.register(monkeypatch)
    yield bot_settings(settings)
    refine_toys.unregister()


async def submit(http):
    files = {"content": png_bytes(Image.new("RGB", (64, 48), RED)),
             "style": png_bytes(Image.new("RGB", (20, 20), (0, 0, 200)))}
    async with http.post("/api/command", data=form("/stylize quality:refine iterations:3",
                                                   **files)) as response:
        body = await response.json()
        assert response.status == 200, body
    return body


async def image_at(http, path):
    async with http.get(path) as response:
        assert response.status == 200
        return Image.open(io.BytesIO(await response.read())).convert("RGB")


async def test_refine_streams_the_draft_then_the_refinement_to_its_result(refine_settings):
    async with running_bot(refine_settings) as (bot, http):
        job = await submit(http)
        assert job["method"] == "hub"
        events = await sse_events(http, job["events"])
        draft_done = next(e for e in events if e["type"] == "done")
        assert draft_done["job"] == job["job"] and draft_done["refining"] is True
        refining = next(e for e in events if e["type"] == "refining")
        assert refining["job"] == job["job"]
        final = events[-1]
        assert final["type"] == "done" and final["job"] == refining["refinement"]
        assert "refining" not in final
        assert final["meta"]["method"] == "gatys" and final["meta"]["options"]["iterations"] == 3
        assert any(e["type"] == "progress" and e["job"] == final["job"] for e in events)

        draft = await image_at(http, draft_done["result"])
        refined = await image_at(http, final["result"])
        assert draft.getpixel((3, 3)) == tuple(255 - c for c in RED)
        assert max(abs(a - (b + 128) / 2) for a, b in zip(refined.getpixel((3, 3)),
                                                           draft.getpixel((3, 3)))) <= 1


async def test_refine_stop_ends_the_stream_with_the_draft_kept(refine_settings):
    refine_toys.GATE.clear()
    async with running_bot(refine_settings) as (bot, http):
        job = await submit(http)
        reading = asyncio.ensure_future(sse_events(http, job["events"]))
        refinement = bot.service.refinement(job["job"])
        assert await asyncio.wait_for(refinement.refinement(), 10) is not None
        async with http.post(f"/api/jobs/{job['job']}/stop") as response:
            assert response.status == 200
            assert (await response.json())["message"] == "Stopping the refinement; the draft stays."
        events = await asyncio.wait_for(reading, 10)
        assert events[-1]["type"] == "kept"
        assert events[-1]["reason"] == "Draft kept as the result (refining stopped)."
        assert [e["type"] for e in events].count("done") == 1  # the draft's, and no other
        async with http.post(f"/api/jobs/{job['job']}/stop") as response:
            assert response.status == 400
            assert "not being refined any more" in (await response.json())["error"]


@pytest.mark.slow
async def test_refine_in_the_browser_shows_the_draft_then_stop_keeps_it_then_refined(
        refine_settings, tmp_path):
    """The page: Quality writes quality:refine; the draft shows while Cancel reads Stop refining;
    stopping keeps the draft; a second run ends with gatys' result in the same frame."""
    from tests.bot.playground.test_e2e import CHROMIUM, CHROMIUM_ARGS, wait_done

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.async_api import async_playwright

    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.new("RGB", (64, 48), RED).save(content)
    Image.new("RGB", (20, 20), (0, 0, 200)).save(style)
    refine_toys.GATE.clear()
    errors: list[str] = []
    async with running_bot(refine_settings) as (bot, http):
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = await browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(bot.url)
            await page.wait_for_selector("body[data-ready='1']")
            await page.select_option("#method", "hub")
            assert not await page.is_visible("#quality-field")  # refine is gatys' alone
            await page.select_option("#method", "gatys")
            await page.select_option("#quality", "refine")
            assert await page.input_value("#command") == "/stylize method:gatys quality:refine"
            await page.set_input_files("#content-input", str(content))
            await page.set_input_files("#style-input", str(style))
            await page.click("#run")

            await page.wait_for_function(
                "() => document.querySelector('#cancel').textContent === 'Stop refining'"
                " && !document.querySelector('#cancel').disabled", timeout=30_000)
            draft_src = await page.get_attribute("#result-img", "src")
            assert "Refining with gatys" in await page.inner_text("#status")
            await page.click("#cancel")
            await page.wait_for_function(
                "() => document.querySelector('#status').textContent.startsWith('Draft kept')",
                timeout=30_000)
            assert await page.inner_text("#status") == "Draft kept as the result (refining stopped)."
            assert await page.get_attribute("#result-img", "src") == draft_src
            assert await page.inner_text("#cancel") == "Cancel" and await page.is_disabled("#cancel")

            kept_href = await page.get_attribute("#download", "href")
            kept_job = kept_href.split("/api/jobs/")[1].split("/")[0]
            refine_toys.GATE.set()
            await page.click("#run")
            refined_job = await wait_done(page, after_job=kept_job)
            assert (await page.inner_text("#meta")).startswith("gatys")
            assert bot.service.queue.get(refined_job).method == "gatys"
            assert await page.inner_text("#cancel") == "Cancel"
            await browser.close()
    assert errors == []
