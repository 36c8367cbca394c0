"""The playground's HTTP API against a real Bot: real queue, real SQLite, real `fast` weights."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from tests.bot.helpers import bot_settings, form, png_bytes, running_bot, sse_events


async def run_job(http, command, **files):
    async with http.post("/api/command", data=form(command, **files)) as response:
        body = await response.json()
        assert response.status == 200, body
    assert body["kind"] == "job"
    return body, await sse_events(http, body["events"])


async def test_page_and_static_files_are_served(pg_settings):
    async with running_bot(pg_settings) as (bot, http):
        async with http.get("/") as page:
            assert page.status == 200
            html = await page.text()
        assert "Stylebot" in html and 'id="command"' in html and "/static/app.js" in html
        for name, kind in (("app.js", "javascript"), ("style.css", "css")):
            async with http.get(f"/static/{name}") as asset:
                assert asset.status == 200 and kind in asset.headers["Content-Type"]


async def test_methods_are_the_services_description(pg_settings):
    async with running_bot(pg_settings) as (bot, http):
        async with http.get("/api/methods") as response:
            methods = await response.json()
        fast = next(m for m in methods if m["name"] == "fast")
        assert fast["ready"] is True
        declared = {o["name"]: o for o in fast["options"]}
        from engine.methods import get_method

        assert list(declared) == get_method("fast").options.names
        assert declared["strength"]["min"] == 0.0 and declared["strength"]["max"] == 1.0
        async with http.get("/api/config") as response:
            config = await response.json()
        assert config["max_upload_bytes"] == pg_settings.max_upload_bytes
        assert config["max_side"] == 256


async def test_upload_runs_and_streams_events_to_the_result(pg_settings, content_png):
    async with running_bot(pg_settings) as (bot, http):
        job, events = await run_job(http, "/fast model:candy strength:0.8", content=content_png)
        assert job["method"] == "fast" and job["options"]["strength"] == 0.8
        kinds = [e["type"] for e in events]
        assert kinds[0] == "queued" and events[0]["position"] == 1
        assert "started" in kinds and kinds[-1] == "done"
        assert all(e["job"] == job["job"] for e in events)
        progress = [e["fraction"] for e in events if e["type"] == "progress"]
        assert progress == sorted(progress) and all(0 <= f <= 1 for f in progress)
        done = events[-1]
        assert done["meta"]["method"] == "fast" and done["meta"]["size"] == [64, 48]

        async with http.get(done["result"]) as response:
            assert response.status == 200 and response.content_type == "image/png"
            result = Image.open(io.BytesIO(await response.read()))
        assert result.size == (64, 48)
        async with http.get(done["download"]) as response:
            assert "attachment" in response.headers["Content-Disposition"]
            assert f"stylebot-fast-{job['job']}.png" in response.headers["Content-Disposition"]

        # A finished job's stream replays from the start and ends again.
        again = await sse_events(http, job["events"])
        assert [e["type"] for e in again][-1] == "done"

        async with http.get("/healthz") as response:
            health = await response.json()
        assert health["queue"]["length"] == 0


async def test_same_seed_same_result_and_reroll_differs(pg_settings, content_png):
    """The seed reported for a job reproduces it; what the page's re-roll relies on."""
    async with running_bot(pg_settings) as (bot, http):
        first, _ = await run_job(http, "/fast model:mosaic", content=content_png)
        second, _ = await run_job(http, "/fast model:mosaic", content=content_png)
        images = []
        for job in (first, second):
            async with http.get(f"/api/jobs/{job['job']}/result") as response:
                images.append(await response.read())
        assert images[0] == images[1]  # fast is deterministic: same input, same bytes


@pytest.mark.security
@pytest.mark.parametrize("command, files, message", [
    ("/fast model:candy", {"content": b"this is not an image at all"},
     "The content image is not an image Stylebot can read"),
    ("/fast model:candy", {"content": b"\x89PNG\r\n\x1a\n" + b"\0" * 64},
     "The content image is"),
    ("/fast model:candy", {}, "Attach the image to restyle"),
    ("/fast strenght:0.5", "content", "Method 'fast' has no option 'strenght'"),
    ("/fast strength:7", "content", "Option 'strength' is 7, outside its allowed range 0..1"),
    ("/stylize preset:nope", "content", "nope"),
    ("/stylize method:picasso", "content", "Unknown method 'picasso'"),
    ("/fast prompt:a fox", "content", "Method 'fast' takes no prompt"),
    ("/stylize strength:", "content", "'strength' has no value"),
    ("", "content", "Type a command"),
])
async def test_bad_requests_are_400_with_one_message(pg_settings, content_png, command, files, message):
    if files == "content":
        files = {"content": content_png}
    async with running_bot(pg_settings) as (bot, http):
        async with http.post("/api/command", data=form(command, **files)) as response:
            body = await response.json()
        assert response.status == 400
        assert message in body["error"], body
        assert "Traceback" not in body["error"] and "\n" not in body["error"]
        assert bot.service.queue.waiting_count == 0


@pytest.mark.security
async def test_too_large_upload_is_refused_before_it_is_read(settings, shared_weights, content_png):
    small = bot_settings(settings, max_upload_mb=0.1)
    async with running_bot(small) as (bot, http):
        big = b"\x89PNG\r\n\x1a\n" + bytes(200 * 1024)
        async with http.post("/api/command", data=form("/fast", content=big)) as response:
            body = await response.json()
        assert response.status == 400
        assert body["error"] == "The content image is over the 0.1 MB limit for uploads."

        # A body whose declared length is past every possible form is refused from the header.
        huge = b"\0" * (1024 * 1024)
        async with http.post("/api/command", data=form("/fast", content=huge)) as response:
            body = await response.json()
        assert response.status == 400
        assert body["error"].startswith("The upload is 1.0 MB; the limit is 0.1 MB per image")


@pytest.mark.security
async def test_too_many_pixels_is_the_engines_message(settings, shared_weights):
    tight = bot_settings(settings, max_pixels=10_000)
    async with running_bot(tight) as (bot, http):
        wide = png_bytes(Image.new("RGB", (200, 100), (10, 20, 30)))
        async with http.post("/api/command", data=form("/fast", content=wide)) as response:
            body = await response.json()
        assert response.status == 400
        assert body["error"].startswith("The content image is 200x100 pixels; the limit is")


@pytest.mark.security
async def test_requests_that_are_not_forms(pg_settings):
    async with running_bot(pg_settings) as (bot, http):
        async with http.post("/api/command", json={"command": "/fast"}) as response:
            assert response.status == 400
            assert "multipart/form-data" in (await response.json())["error"]
        async with http.post("/api/command", data=b"--x\r\ngarbage",
                             headers={"Content-Type": "multipart/form-data; boundary=zzz"}) as response:
            body = await response.json()
            assert response.status == 400, body
            assert "form" in body["error"]
        async with http.get("/api/nothing-here") as response:
            assert response.status == 404 and "error" in await response.json()
        async with http.get("/api/jobs/00000000/events") as response:
            assert response.status == 404
            assert "No playground job '00000000'" in (await response.json())["error"]
        async with http.delete("/api/jobs/00000000") as response:
            assert response.status == 400
            assert (await response.json())["error"] == "You have no jobs queued or running."


async def test_parse_endpoint_uses_the_shared_parser(pg_settings):
    async with running_bot(pg_settings) as (bot, http):
        async with http.post("/api/parse", json={"command": "/sd a red fox strength: 0.6"}) as response:
            body = await response.json()
        assert body["parsed"]["method"] == "sd" and body["parsed"]["prompt"] == "a red fox"
        assert body["parsed"]["options"] == {"strength": "0.6"}
        assert body["text"] == '/stylize method:sd strength:0.6 prompt:"a red fox"'
        async with http.post("/api/parse", json={"command": '/sd prompt:"open'}) as response:
            assert response.status == 400
            assert "never closed" in (await response.json())["error"]
        async with http.post("/api/parse", data=b"{not json",
                             headers={"Content-Type": "application/json"}) as response:
            assert response.status == 400


async def test_presets_crud_and_use(pg_settings, content_png):
    async with running_bot(pg_settings) as (bot, http):
        async with http.get("/api/presets") as response:
            assert await response.json() == []

        save = form("/stylize method:fast model:mosaic strength:0.6")
        save.add_field("name", "my-mosaic")
        async with http.post("/api/presets", data=save) as response:
            saved = await response.json()
        assert response.status == 201, saved
        assert saved["name"] == "my-mosaic" and saved["method"] == "fast"
        assert saved["options"] == {"model": "mosaic", "strength": 0.6}

        again = form("/stylize method:fast model:candy")
        again.add_field("name", "my-mosaic")
        async with http.post("/api/presets", data=again) as response:
            assert response.status == 400
            assert "already have a preset named 'my-mosaic'" in (await response.json())["error"]

        job, events = await run_job(http, "/stylize preset:my-mosaic", content=content_png)
        assert events[-1]["type"] == "done"
        assert events[-1]["meta"]["options"]["model"] == "mosaic"
        assert events[-1]["meta"]["options"]["strength"] == 0.6

        async with http.get("/api/presets") as response:
            listed = await response.json()
        assert [(p["name"], p["use_count"]) for p in listed] == [("my-mosaic", 1)]
        async with http.get("/api/presets/my-mosaic") as response:
            assert (await response.json())["last_used_at"] is not None

        async with http.delete("/api/presets/my-mosaic") as response:
            assert response.status == 200
        async with http.get("/api/presets/my-mosaic") as response:
            assert response.status == 400
            assert "my-mosaic" in (await response.json())["error"]
        async with http.post("/api/command",
                             data=form("/stylize preset:my-mosaic", content=content_png)) as response:
            assert response.status == 400


async def test_presets_from_the_command_box_with_style_images(pg_settings, content_png, style_png):
    async with running_bot(pg_settings) as (bot, http):
        async with http.post("/api/command", data=form("/preset save name:blend-me method:fast "
                                                       "model:26:3=0.7,12=0.3")) as response:
            body = await response.json()
        assert body["kind"] == "preset_saved", body
        assert body["preset"]["options"] == {"model": "26:3=0.7,12=0.3"}

        async with http.post("/api/command", data=form("/presets")) as response:
            body = await response.json()
        assert [p["name"] for p in body["presets"]] == ["blend-me"]
        assert body["message"].startswith("blend-me: fast model:26:3=0.7,12=0.3")

        # fast takes no style image: the preset is refused with the method's own words.
        async with http.post("/api/command", data=form("/preset save name:x method:fast",
                                                       style=style_png)) as response:
            assert response.status == 400
            assert "takes no style image" in (await response.json())["error"]

        async with http.post("/api/command", data=form("/preset delete name:blend-me")) as response:
            assert (await response.json())["kind"] == "preset_deleted"
        async with http.post("/api/command", data=form("/preset show blend-me")) as response:
            assert response.status == 400


async def test_help_queue_and_methods_commands(pg_settings):
    async with running_bot(pg_settings) as (bot, http):
        for command, words in (("/help", "/stylize"), ("/queue", "no jobs"), ("/methods", "fast:")):
            async with http.post("/api/command", data=form(command)) as response:
                body = await response.json()
            assert response.status == 200 and words in body["message"], (command, body)


async def test_health_reports_engine_queue_and_playground(pg_settings):
    async with running_bot(pg_settings) as (bot, http):
        async with http.get("/healthz") as response:
            health = await response.json()
        assert response.status == 200
        assert health["status"] == "ok"
        assert health["engine"]["device"] == "cpu" and health["engine"]["accepting"] is True
        assert health["queue"] == {"length": 0, "waiting": 0, "running": 0}
        assert health["adapters"]["playground"]["state"] == "serving"
        assert health["adapters"]["playground"]["detail"] == bot.url
        assert json.dumps(health)  # plain JSON all the way down


@pytest.mark.security
async def test_other_web_sites_cannot_use_the_playground(pg_settings, content_png):
    """A page elsewhere can make the browser POST here, and DNS rebinding can rename us."""
    async with running_bot(pg_settings) as (bot, http):
        async with http.post("/api/command", data=form("/fast", content=content_png),
                             headers={"Origin": "https://evil.example"}) as response:
            assert response.status == 403
            assert (await response.json())["error"] == "Requests from other web sites are refused."
        async with http.delete("/api/presets/x", headers={"Origin": "null"}) as response:
            assert response.status == 403
        async with http.get("/api/presets", headers={"Host": "rebound.example"}) as response:
            assert response.status == 403
        assert bot.service.queue.waiting_count == 0 and bot.service.queue.running_count == 0
        # The page's own origin, and clients that send none (curl), are served.
        origin = bot.url.rstrip("/")
        async with http.post("/api/command", data=form("/help"), headers={"Origin": origin}) as response:
            assert response.status == 200
        async with http.get("/api/presets", headers={"Host": "localhost"}) as response:
            assert response.status == 200
