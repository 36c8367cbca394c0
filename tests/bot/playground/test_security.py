"""What a hostile web page or an unlucky client tries against the playground's HTTP API.

Each test names the hole it closes; the routes are listed once (``ROUTES``) and checked
against the router, so a new route cannot slip past the guards' tests.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.playground.app import REQUESTER
from tests.bot.helpers import bot_settings, form, running_bot, sse_events

pytestmark = pytest.mark.security

# Names a DNS-rebinding attacker can point at 127.0.0.1; none of them is this machine.
REBOUND_HOSTS = ["127.attacker.example", "127.0.0.1.attacker.example:8080",
                 "localhost.attacker.example", "rebound.example", "[::1].attacker.example",
                 "0x7f000001", "127.1"]
# Every route the playground serves, with the request that would change or read something.
ROUTES = [
    ("GET", "/"),
    ("GET", "/static/{file}"),
    ("GET", "/healthz"),
    ("GET", "/api/config"),
    ("GET", "/api/methods"),
    ("POST", "/api/parse"),
    ("POST", "/api/command"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs"),
    ("DELETE", "/api/jobs/{job}"),
    ("GET", "/api/jobs/{job}/events"),
    ("POST", "/api/jobs/{job}/stop"),
    ("GET", "/api/jobs/{job}/result"),
    ("GET", "/api/presets"),
    ("POST", "/api/presets"),
    ("GET", "/api/presets/{name}"),
    ("DELETE", "/api/presets/{name}"),
    ("GET", "/api/presets/{name}/styles/{index}"),
]


async def save_preset_with_style(http, style_png, name="mine"):
    async with http.post("/api/command", data=form(f"/preset save name:{name} method:hub",
                                                   style=style_png)) as response:
        assert response.status == 200, await response.text()


async def finished_job(http, content_png) -> str:
    async with http.post("/api/command", data=form("/fast model:candy", content=content_png)) as response:
        job = await response.json()
    assert (await sse_events(http, job["events"]))[-1]["type"] == "done"
    return job["job"]


def request_for(method, route, *, job, content_png, style_png):
    """The concrete path and body that would act on this session's job and preset."""
    path = route.format(job=job, name="mine", index=0, file="app.js")
    body = None
    if path == "/api/parse":
        body = {"json": {"command": "/fast"}}
    elif path == "/api/command":
        body = {"data": form("/preset delete name:mine")}
    elif path == "/api/jobs" and method == "POST":
        body = {"data": form("/fast model:candy", content=content_png)}
    elif path == "/api/presets" and method == "POST":
        save = form("/stylize method:hub", style=style_png)
        save.add_field("name", "planted")
        body = {"data": save}
    return path, body or {}


def test_every_route_is_in_the_guard_tests(pg_settings):
    """ROUTES is the router's own list: a route added later must be added to these tests."""
    from stylebot.process import Bot

    app = Bot(pg_settings).make_web_app()
    served = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info()
        served.add((route.method, info.get("path") or info.get("formatter") or info.get("prefix")))
    assert served == set(ROUTES)


@pytest.mark.parametrize("method, route", ROUTES)
async def test_rebound_host_names_are_refused_on_every_route(pg_settings, content_png, style_png,
                                                            method, route):
    """DNS rebinding: a name that merely starts like an address (127.attacker.example) is not us."""
    async with running_bot(pg_settings) as (bot, http):
        await save_preset_with_style(http, style_png)
        job = await finished_job(http, content_png) if "{job}" in route else "00000000"
        jobs_before = [j.job_id for j in bot.service.jobs_of(REQUESTER)]
        for host in REBOUND_HOSTS:
            path, body = request_for(method, route, job=job, content_png=content_png,
                                     style_png=style_png)
            async with http.request(method, path, headers={"Host": host}, **body) as response:
                answer = await response.read()
                assert response.status == 403, (host, method, path, response.status, answer[:200])
                assert response.content_type == "application/json"
                assert "answers" in (await response.json())["error"]
        # Nothing changed: the preset and its style image are still there, no job was added.
        preset = await bot.service.get_preset(REQUESTER, "mine")
        assert len(preset.styles) == 1
        assert [p.name for p in await bot.service.list_presets(REQUESTER)] == ["mine"]
        assert [j.job_id for j in bot.service.jobs_of(REQUESTER)] == jobs_before
        # The same request from this machine's own names is served (not 403).
        path, body = request_for(method, route, job=job, content_png=content_png, style_png=style_png)
        async with http.request(method, path, **body) as response:
            assert response.status != 403, await response.text()


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.2:1",
                                  "[::1]", "[::1]:8080"])
async def test_this_machines_own_names_are_served(pg_settings, host):
    async with running_bot(pg_settings) as (bot, http):
        async with http.get("/api/presets", headers={"Host": host}) as response:
            assert response.status == 200, await response.text()


async def test_a_configured_public_name_is_served_and_only_it(pg_settings):
    """Behind a reverse proxy the page is reached by the operator's name (STYLEBOT_PUBLIC_HOST)."""
    public = pg_settings.model_copy(update={"public_host": "stylebot.example.org"})
    async with running_bot(public) as (bot, http):
        for host, status in (("stylebot.example.org", 200), ("Stylebot.Example.Org:443", 200),
                             ("localhost", 200), ("stylebot.example.org.attacker.example", 403),
                             ("127.attacker.example", 403), ("example.org", 403)):
            async with http.get("/api/presets", headers={"Host": host}) as response:
                assert response.status == status, (host, await response.text())
    async with running_bot(pg_settings) as (bot, http):
        async with http.get("/api/presets", headers={"Host": "stylebot.example.org"}) as response:
            assert response.status == 403


async def test_a_style_index_outside_the_list_is_404(pg_settings, style_png):
    """/styles/-1 used to be Python's last item: only 0..n-1, written in ASCII digits, is an index."""
    async with running_bot(pg_settings) as (bot, http):
        await save_preset_with_style(http, style_png)
        async with http.get("/api/presets/mine/styles/0") as response:
            assert response.status == 200 and response.content_type == "image/png"
        for index in ("-1", "-0", "1", "2", "99999999999999999999", "+0", "%200", "0_0", "%D9%A0",
                      "0x0", "0.0", "-99999999999999999999", "9" * 5000):
            async with http.get(f"/api/presets/mine/styles/{index}") as response:
                assert response.status == 404, (index, response.status)
                assert response.content_type == "application/json"
                error = (await response.json())["error"]
                assert error and "\n" not in error


FORM = "multipart/form-data; boundary=zzz"


def part(name: bytes, value: bytes = b"/help", *headers: bytes, filename: bytes | None = None) -> bytes:
    disposition = b'Content-Disposition: form-data; name="%s"' % name
    if filename is not None:
        disposition += b'; filename="%s"' % filename
    return b"\r\n".join([b"--zzz", disposition, *headers, b"", value]) + b"\r\n"


async def post_form(http, body, path="/api/command"):
    async with http.post(path, data=body, headers={"Content-Type": FORM}) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, (await response.json())["error"]


@pytest.mark.parametrize("body", [
    part(b"command", b"/help", b"bad header line") + b"--zzz--\r\n",
    part(b"command", b"/help", b"Bad Name: x") + b"--zzz--\r\n",
    part(b"command", b"/help", b"X-Long: " + b"a" * 100_000) + b"--zzz--\r\n",
    part(b"command", b"/help", *[b"X-Many: a"] * 200) + b"--zzz--\r\n",
    part(b"_charset_", b"x" * 64) + part(b"command") + b"--zzz--\r\n",
    part(b"command", b"/help", b"Content-Type: multipart/mixed") + b"--zzz--\r\n",
    b"--zzz\r\n" + b"X" * 100_000 + b"\r\n--zzz--\r\n",
    part(b"command", b"--yyy\r\n\r\nx\r\n--yyy--", b"Content-Type: multipart/mixed; boundary=yyy")
    + b"--zzz--\r\n",
], ids=["no-colon", "space-in-name", "long-header", "many-headers", "long-charset", "nested-no-boundary",
        "long-line", "nested"])
async def test_malformed_part_headers_are_400_with_one_line(pg_settings, caplog, body):
    """aiohttp's own parse errors (InvalidHeader, LineTooLong, ...) were a 500 with a traceback logged."""
    async with running_bot(pg_settings) as (bot, http):
        status, error = await post_form(http, body)
        assert status == 400, error
        assert "form" in error and "\n" not in error
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def poll_health(http, stop) -> float:
    """The longest /healthz took while ``stop`` was unset."""
    import time

    worst = 0.0
    while not stop.is_set():
        start = time.monotonic()
        async with http.get("/healthz") as response:
            assert response.status == 200
        worst = max(worst, time.monotonic() - start)
        await asyncio.sleep(0.02)
    return worst


@pytest.mark.parametrize("body", [
    b"".join(part(b"f%d" % i, b"x") for i in range(200_000)) + b"--zzz--\r\n",
    b"\r\n" * 2_000_000 + part(b"command") + b"--zzz--\r\n",
    b"".join(part(b"content", b"", filename=b"") for i in range(50_000)) + b"--zzz--\r\n",
    b"".join(part(b"command") for i in range(100)) + b"--zzz--\r\n",
], ids=["200k-fields", "2M-preamble-lines", "50k-empty-files", "100-same-field"])
async def test_forms_with_too_many_parts_or_lines_are_refused_before_parsing(pg_settings, body):
    """A form with 200 000 fields took ~30 s and stalled /healthz for seconds: now a fixed budget."""
    import time

    async with running_bot(pg_settings) as (bot, http):
        stop = asyncio.Event()
        health = asyncio.create_task(poll_health(http, stop))
        start = time.monotonic()
        try:
            status, error = await post_form(http, body)
        finally:
            elapsed = time.monotonic() - start
            stop.set()
            worst_health = await health
        assert status == 400 and "\n" not in error
        assert "too many" in error, error
        assert elapsed < 3, elapsed
        assert worst_health < 0.5, worst_health


async def test_a_chunked_form_is_held_to_the_same_total(settings, shared_weights):
    """Without Content-Length the check before reading cannot run: the bytes are counted as read."""
    small = bot_settings(settings, max_upload_mb=0.01)  # 10 KB an image: 146 KB a form in all
    body = (part(b"command") + b"".join(part(b"f%d" % i, b"x" * 16_000) for i in range(6))
            + b"".join(part(b"style", b"y" * 10_000, filename=b"s.png") for i in range(8))
            + b"--zzz--\r\n")
    assert len(body) > 8 * small.max_upload_bytes + 64 * 1024

    async def chunks():
        for start in range(0, len(body), 4096):
            yield body[start:start + 4096]

    async with running_bot(small) as (bot, http):
        async with http.post("/api/command", data=chunks(), headers={"Content-Type": FORM}) as response:
            answer = await response.json()
        assert response.status == 400, answer
        assert answer["error"].startswith("The upload is over"), answer


@pytest.mark.parametrize("method, path, status", [
    ("POST", "/static/app.js", 405), ("GET", "/nope", 404), ("GET", "/static/nope.js", 404),
    ("DELETE", "/", 405), ("GET", "/static/../pyproject.toml", 404), ("PUT", "/healthz", 405),
])
async def test_errors_outside_the_api_are_json_too(pg_settings, method, path, status):
    """aiohttp's own text pages were left for paths outside /api/; every error is one JSON line."""
    async with running_bot(pg_settings) as (bot, http):
        async with http.request(method, path) as response:
            assert response.status == status
            assert response.content_type == "application/json", await response.text()
            error = (await response.json())["error"]
            assert error and "\n" not in error


@pytest.mark.parametrize("path", ["/", "/static/app.js"])
@pytest.mark.parametrize("range_", ["bytes=99999999-", "bytes=-", "a=b" * 50])
async def test_the_pages_files_ignore_ranges(pg_settings, path, range_):
    """FileResponse answered an unsatisfiable Range with a bare, empty 416: the files are small."""
    async with running_bot(pg_settings) as (bot, http):
        async with http.get(path, headers={"Range": range_}) as response:
            assert response.status == 200, (response.status, response.content_type)
            assert len(await response.read()) > 1000


@pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b'{"a":' * 2000 + b"1" + b"}" * 2000])
async def test_deeply_nested_json_is_400(pg_settings, body):
    """json.loads raised RecursionError (a 500, traceback logged) on 5000 nested lists."""
    async with running_bot(pg_settings) as (bot, http):
        async with http.post("/api/parse", data=body,
                             headers={"Content-Type": "application/json"}) as response:
            assert response.status == 400, await response.text()
            assert "JSON object" in (await response.json())["error"]
