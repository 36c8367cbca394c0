"""End to end in a real headless Chromium: the page, the real server, real `hub` and `fast`.

Debian's chromium is driven by Playwright (never a downloaded browser); `.ci/run` installs
it. Without /usr/bin/chromium the test is skipped, saying so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.bot.helpers import bot_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Where to keep the page's screenshots for a person to look at (default: the test's tmp dir).
SHOTS = os.environ.get("STYLEBOT_TEST_SCREENSHOTS")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium chromium-driver; .ci/run does this)"),
]

# Collects every text the status line shows, so the test sees queue position and progress
# even when a job moves faster than a poll would.
RECORD_STATUS = """() => {
  window.__statuses = [];
  new MutationObserver(() => window.__statuses.push(document.querySelector('#status').textContent))
    .observe(document.querySelector('#status'), {childList: true, characterData: true, subtree: true});
}"""


async def wait_done(page, after_job: str | None = None, timeout: float = 90_000) -> str:
    """Wait for a finished result newer than ``after_job``; return its job id."""
    await page.wait_for_function(
        """(previous) => {
             const link = document.querySelector('#download');
             const status = document.querySelector('#status');
             if (status.classList.contains('failed')) return true;
             return !link.hidden && status.classList.contains('done')
                    && (!previous || !link.href.includes(previous));
           }""", arg=after_job, timeout=timeout)
    status = await page.inner_text("#status")
    assert "Done" in status, status
    href = await page.get_attribute("#download", "href")
    job = re.search(r"/api/jobs/([0-9a-f]+)/result", href).group(1)
    # The link appears when the job is done; the <img> may still be fetching the result.
    await page.wait_for_function(
        "() => { const i = document.querySelector('#result-img'); return i.complete && i.naturalWidth > 0; }",
        timeout=15_000)
    return job


async def click_slider_at(page, selector: str, fraction: float) -> None:
    box = await page.locator(selector).bounding_box()
    await page.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)


async def shot(page, tmp_path: Path, name: str) -> None:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


async def test_page_runs_hub_and_fast_moves_a_slider_and_reuses_a_preset(settings, shared_weights,
                                                                          tmp_path):
    from playwright.async_api import async_playwright

    from stylebot.process import Bot
    from engine.samples import sample_content, sample_style

    content, style = tmp_path / "content.png", tmp_path / "style.png"
    sample_content(128).save(content)
    sample_style(128).save(style)

    bot = Bot(bot_settings(settings, max_side=128))
    await bot.start()
    errors: list[str] = []
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(bot.url)
            await page.wait_for_selector("body[data-ready='1']")
            await page.evaluate(RECORD_STATUS)
            assert "cpu" in await page.inner_text("#health")

            # 1. hub: pick the content and the style image, run from the generated command.
            await page.set_input_files("#content-input", str(content))
            await page.select_option("#method", "hub")
            assert await page.input_value("#command") == "/stylize method:hub"
            assert await page.is_visible("#style-drop")
            await page.set_input_files("#style-input", str(style))
            await page.click("#run")
            hub_job = await wait_done(page)
            statuses = await page.evaluate("window.__statuses")
            assert any(s.startswith("Queued") or s.startswith("Job") for s in statuses), statuses
            assert any(re.search(r"\d+%", s) for s in statuses), statuses  # live progress
            assert "hub" in await page.inner_text("#meta")

            # 2. Move the strength slider: the command follows and the job re-runs by itself.
            await page.evaluate("window.__statuses = []")
            await click_slider_at(page, "#opt-strength", 0.3)
            command = await page.input_value("#command")
            strength = float(re.search(r"strength:([0-9.]+)", command).group(1))
            assert 0.15 < strength < 0.45, command
            assert await page.inner_text("#opt-strength-value") == f"{strength:.2f}"
            rerun_job = await wait_done(page, after_job=hub_job)
            assert f"strength {strength:g}" in await page.inner_text("#meta")
            assert any(re.search(r"\d+%", s) for s in await page.evaluate("window.__statuses"))

            # 3. fast, typed as a Discord user would; the controls follow the typed text.
            await page.fill("#command", "/fast model:mosaic strength:0.7")
            await page.wait_for_function("document.querySelector('#method').value === 'fast'")
            await page.wait_for_function("document.querySelector('#opt-model').value === 'mosaic'")
            assert await page.inner_text("#opt-strength-value") == "0.70"
            assert not await page.is_visible("#style-drop")  # fast takes no style image
            await page.press("#command", "Enter")
            fast_job = await wait_done(page, after_job=rerun_job)
            meta = await page.inner_text("#meta")
            assert meta.startswith("fast") and "model mosaic" in meta and "strength 0.7" in meta
            assert await page.is_disabled("#reroll")  # fast is deterministic: no seed to re-roll
            await shot(page, tmp_path, "playground-fast")

            # 4. Save the current settings as a preset, switch away, then use it again.
            await page.fill("#preset-name", "my-mosaic")
            await page.click("#preset-save")
            await page.wait_for_selector("#preset-list li[data-preset='my-mosaic']")
            assert "fast model:mosaic strength:0.7" in await page.inner_text(
                "#preset-list li[data-preset='my-mosaic']")
            await page.select_option("#method", "hub")
            await page.click("#preset-list li[data-preset='my-mosaic'] button.use")
            await page.wait_for_function(
                "document.querySelector('#command').value === '/stylize preset:my-mosaic'")
            assert await page.input_value("#method") == "fast"
            assert "my-mosaic" in await page.inner_text("#preset-note")
            await page.click("#run")
            preset_job = await wait_done(page, after_job=fast_job)
            meta = await page.inner_text("#meta")
            assert "model mosaic" in meta and "strength 0.7" in meta
            presets = await page.evaluate("fetch('/api/presets').then(r => r.json())")
            assert [(p["name"], p["use_count"]) for p in presets] == [("my-mosaic", 1)]

            # 5. sd's transformation-strength slider says what each range does (not run here:
            #    its model is not in the offline weights).
            methods = await page.evaluate("fetch('/api/methods').then(r => r.json())")
            if any(m["name"] == "sd" for m in methods):
                await page.uncheck("#live")
                await page.select_option("#method", "sd")
                assert await page.is_visible("#prompt")
                notes = {}
                for fraction in (0.1, 0.4, 0.6, 0.9):
                    await click_slider_at(page, "#opt-strength", fraction)
                    notes[fraction] = (await page.inner_text("#note-strength")).split(":")[0]
                assert notes == {0.1: "Subtle", 0.4: "Moderate", 0.6: "Strong", 0.9: "Reimagined"}
                await page.fill("#prompt", "a fox in the snow")
                command = await page.input_value("#command")
                assert command.startswith("/stylize method:sd strength:0.")
                assert command.endswith('prompt:"a fox in the snow"')
                await shot(page, tmp_path, "playground-sd")
                await page.check("#live")

            # 6. gatys' style-weight slider is log-scale over 1e5..1e7 and re-runs the
            #    optimisation when let go.
            gatys = next((m for m in methods if m["name"] == "gatys"), None)
            if gatys is not None and gatys["ready"]:
                await page.select_option("#method", "gatys")
                slider = page.locator("#opt-style_weight")
                assert (await slider.get_attribute("min"), await slider.get_attribute("max")) == ("5", "7")
                await page.fill("#command", "/gatys iterations:3 size:64")
                await page.wait_for_function("document.querySelector('#method').value === 'gatys'")
                await page.press("#command", "Enter")
                first = await wait_done(page, after_job=preset_job)
                await click_slider_at(page, "#opt-style_weight", 0.9)
                command = await page.input_value("#command")
                weight = float(re.search(r"style_weight:([0-9.e]+)", command).group(1))
                assert 3e6 < weight < 1e7, command
                assert (await page.inner_text("#note-style_weight")).startswith("Style first")
                await wait_done(page, after_job=first)
                assert "style_weight" in await page.inner_text("#meta")
                await shot(page, tmp_path, "playground-gatys")

            # 7. A mistake is shown on the page as the server's one line, never a traceback.
            await page.fill("#command", "/fast strength:3")
            await page.press("#command", "Enter")
            await page.wait_for_selector("#status.failed")
            failure = await page.inner_text("#status")
            assert failure == "Option 'strength' is 3, outside its allowed range 0..1."
            # ...and the last result stays only as a greyed "previous", without its buttons
            assert "previous" in await page.get_attribute("#result-frame", "class")
            assert await page.is_visible("#previous-label")
            assert await page.is_hidden("#download") and await page.is_disabled("#reroll")
            assert (await page.inner_text("#meta")).startswith("Previous result:")

            await page.fill("#command", "/stylize method:hub")
            await page.wait_for_function("document.querySelector('#method').value === 'hub'")
            await shot(page, tmp_path, "playground-hub")
            await browser.close()
    finally:
        await bot.stop(grace_s=0)
    assert errors == [], errors
