"""A bounded fuzz of every playground route: random methods, paths, headers, bodies and forms.

A hand-written generator, seeded (``STYLEBOT_FUZZ_SEED``, default fixed) and bounded in
requests (``STYLEBOT_FUZZ_REQUESTS``) and seconds; traffic goes only to the test's own
server on 127.0.0.1. The property, for every answer: never a 5xx, never a traceback, every
error a JSON ``{"error": one line}``, nothing from outside the static folder, and /healthz
keeps answering quickly throughout.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import random
import time
from urllib.parse import quote

import aiohttp
import pytest
from PIL import Image
from yarl import URL

from bot.playground.app import STATIC_DIR
from tests.bot.helpers import bot_settings, png_bytes, running_bot
from tests.bot.playground.test_security import ROUTES

pytestmark = pytest.mark.security

SEED = int(os.environ.get("STYLEBOT_FUZZ_SEED", "1107"))
REQUESTS = int(os.environ.get("STYLEBOT_FUZZ_REQUESTS", "400"))
BUDGET_S = float(os.environ.get("STYLEBOT_FUZZ_SECONDS", "40"))
HEALTH_LIMIT_S = 1.0

JUNK = ["", " ", "..", "%2e%2e", "%00", "%ff", "-1", "+0", "0x1", "1e9", "99999999999999999999",
        "\u0660", "é", "%C3%A9", "<script>", "null", "a" * 300, "%2F", "%5C..%5C", "mine", "MINE",
        "nope", "'", '"', "\\", "*"]
METHODS = ["GET", "GET", "POST", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "TRACE"]
EXTRA_PATHS = ["/static/../pyproject.toml", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
               "/static/", "/static", "//api/presets", "/api/presets/", "/API/config", "/healthz/",
               "/api", "/api/", "/favicon.ico", "/api/jobs/x/y/z", "/%00", "/index.html",
               "/static/%2e%2e%2f%2e%2e%2fpyproject.toml"]
FORM_ROUTES = [("POST", "/api/command"), ("POST", "/api/jobs"), ("POST", "/api/presets")]
FIELD_NAMES = ["command", "command", "content", "content", "style", "style", "mask", "name", "replace",
               "_charset_", "", "x", "content[]", "é"]


def commands(rng: random.Random) -> str:
    name = rng.choice(["mine", "other", "x" * 40, "../x", "a b", ""])
    return rng.choice([
        "/fast model:candy", "/stylize method:hub", f"/stylize preset:{name}",
        "/help", "/presets", "/queue", "/methods", "/cancel", f"/cancel {rng.choice(JUNK)}",
        f"/preset save name:{name} method:hub", f"/preset save name:{name} method:fast model:candy",
        f"/preset delete name:{name}", f"/preset show {name}", f"/stylize preset:{name}",
        "/fast model:candy", f"/fast model:{rng.choice(JUNK)}", f"/stylize method:{rng.choice(JUNK)}",
        f"/hub strength:{rng.choice(['0.5', '-1', 'nan', 'inf', '1e999', ''])}", '/sd prompt:"open',
        "/fast " + " ".join(f"{rng.choice(JUNK)}:{rng.choice(JUNK)}" for _ in range(rng.randint(1, 5))),
        "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 60))),
        "/stylize " + "x:" * 3000, "\u202e/help", "/fast model:candy replace:yes size:64",
    ])


TINY_PNG = png_bytes(Image.new("RGB", (16, 16), (200, 40, 90)))


def images(rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    if kind >= 5:
        return TINY_PNG
    if kind == 1:
        return TINY_PNG[:rng.randint(1, len(TINY_PNG) - 1)]
    if kind == 2:
        return b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(0, 200))
    if kind == 3:
        return b""
    return rng.randbytes(rng.randint(1, 3000))



def multipart(rng: random.Random) -> tuple[bytes, str]:
    boundary = rng.choice(["zzz", "----WebKitFormBoundary7MA4YWxkTrZu0gW"] * 4 + ["a" * 70, "x y", "é"])
    out = io.BytesIO()
    names = [rng.choice(FIELD_NAMES) for _ in range(rng.choice([0, 1, 2, 2, 3, 3, 4, 20]))]
    plausible = rng.random() < 0.4  # what the page sends, so that jobs and presets happen too
    if plausible:
        names = ["command", "content", *(["style"] * rng.randint(0, 2)), *names[:2]]
    for name in names:
        headers = [f'Content-Disposition: form-data; name="{name}"'.encode()]
        if plausible and name in ("content", "style"):
            headers[0] += b'; filename="a.png"'
            headers.append(b"Content-Type: image/png")
            value = TINY_PNG if rng.random() < 0.8 else images(rng)
        elif name in ("content", "style", "mask") or rng.random() < 0.1:
            headers[0] += b'; filename="' + rng.choice([b"a.png", b"", b"../../x", b"\xff.png"]) + b'"'
            headers.append(b"Content-Type: " + rng.choice([b"image/png", b"text/plain", b"multipart/mixed"]))
            value = images(rng)
        elif name == "replace":
            value = rng.choice([b"true", b"no", b"maybe", b""])
        elif plausible and name == "command" and rng.random() < 0.6:
            value = rng.choice([b"/fast model:candy", b"/stylize method:hub", b"/fast strength:0.5",
                                b"/preset save name:mine method:hub", b"/stylize preset:mine"])
        else:
            value = commands(rng).encode("utf-8", "surrogatepass")
        if rng.random() < 0.05:
            headers.append(rng.choice([b"broken header", b"X: " + b"a" * 9000, b"Content-Length: 3",
                                       b"Content-Transfer-Encoding: base64", b"Content-Disposition: ;;"]))
        out.write(b"--" + boundary.encode() + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + value + b"\r\n")
    if rng.random() < 0.9:
        out.write(b"--" + boundary.encode() + b"--\r\n")
    body = out.getvalue()
    if rng.random() < 0.05:
        body = body[:rng.randint(0, len(body))]
    content_type = f"multipart/form-data; boundary={boundary}"
    if rng.random() < 0.15:
        content_type = rng.choice(["multipart/form-data", f"multipart/form-data; boundary=other{boundary}",
                                   f'multipart/form-data; boundary="{boundary}"'])
    return body, content_type


def local_url(port: int, target: str) -> URL:
    """The request target as given (``//api``, ``%2e%2e`` and all), on 127.0.0.1 only."""
    safe = "/%:@!$&'()*+,;=-._~?"  # percent-encode only what HTTP/1.1 cannot carry raw
    path, _, query = quote(target, safe=safe).partition("?")
    url = URL.build(scheme="http", host="127.0.0.1", port=port, path=path, query_string=query,
                    encoded=True)
    assert url.host == "127.0.0.1" and url.port == port, url
    return url


def a_request(rng: random.Random, port: int, jobs: list[str]) -> dict:
    route_method, route = rng.choice(ROUTES if rng.random() < 0.7 else FORM_ROUTES)
    method = route_method if rng.random() < 0.75 else rng.choice(METHODS)
    if rng.random() < 0.85:
        job = rng.choice(jobs) if jobs and rng.random() < 0.6 else rng.choice(JUNK)
        path = route.format(job=job, name=rng.choice(["mine", *JUNK]),
                            index=rng.choice(["0", "1", *JUNK]),
                            file=rng.choice(["app.js", "index.html", "style.css", "../app.py", *JUNK]))
    else:
        route, path = "", rng.choice(EXTRA_PATHS)
    if rng.random() < 0.2:
        path += "?" + rng.choice(["download=1", "download=", "a=%ff", "x" * 2000, "&&==", "download=1&download=0"])
    headers: dict[str, str] = {}
    if rng.random() < 0.15:
        headers["Host"] = rng.choice(["localhost", f"127.0.0.1:{port}", "[::1]", "127.attacker.example",
                                      "evil.example", "localhost:abc", "", "[::1", "0x7f.1"])
    if rng.random() < 0.2:
        headers["Origin"] = rng.choice([f"http://127.0.0.1:{port}", "https://evil.example", "null", "",
                                        f"http://localhost:{port}"])
    if rng.random() < 0.1:
        headers[rng.choice(["Range", "If-Modified-Since", "Accept-Encoding", "Cookie", "X-Fuzz"])] = (
            rng.choice(["bytes=0-1", "bytes=99999-", "bytes=-", "garbage", "gzip", "a=b" * 100]))
    body: bytes | None = None
    kind = rng.randrange(6)
    if method == "POST" and rng.random() < 0.7:  # mostly what the route reads, to get past the door
        kind = 1 if route == "/api/parse" else 3
    if kind == 1:
        body = json.dumps(rng.choice([{"command": commands(rng)}, {"command": 5}, [], "x", None,
                                      {"command": {"a": 1}}])).encode()
        headers["Content-Type"] = "application/json"
    elif kind == 2:
        body = rng.choice([b"[" * 5000 + b"]" * 5000, b"{" * 10, b"\xff\xfe", b"1e999999", b"NaN"])
        headers["Content-Type"] = rng.choice(["application/json", "text/plain"])
    elif kind in (3, 4):
        body, headers["Content-Type"] = multipart(rng)
    elif kind == 5:
        body = rng.randbytes(rng.randint(0, 2000))
        if rng.random() < 0.5:
            headers["Content-Type"] = rng.choice(["application/x-www-form-urlencoded", "image/png",
                                                  "multipart/mixed; boundary=zzz"])
    return {"method": method, "path": path, "headers": headers, "data": body}


STATIC_FILES = {p.read_bytes() for p in STATIC_DIR.iterdir() if p.is_file()}


def check_answer(req: dict, status: int, content_type: str, body: bytes) -> None:
    what = f"{req['method']} {req['path'][:120]} {req['headers']}"
    assert status < 500, (what, status, body[:300])
    assert b"Traceback" not in body and b'File "' not in body, (what, body[:300])
    if req["path"].startswith("/static") and status == 200 and req["method"] == "GET":
        assert body in STATIC_FILES, (what, body[:100])
    if status >= 400 and req["method"] != "HEAD":
        assert content_type == "application/json", (what, status, content_type, body[:200])
        error = json.loads(body)
        assert list(error) == ["error"], (what, error)
        assert isinstance(error["error"], str) and error["error"].strip(), (what, error)
        assert "\n" not in error["error"], (what, error)


async def health_watch(http: aiohttp.ClientSession, stop: asyncio.Event) -> float:
    worst = 0.0
    while not stop.is_set():
        start = time.monotonic()
        async with http.get("/healthz") as response:
            assert response.status == 200
            await response.read()
        worst = max(worst, time.monotonic() - start)
        await asyncio.sleep(0.05)
    return worst


@pytest.fixture
def pg_settings(settings, shared_weights):
    return bot_settings(settings, max_upload_mb=0.5, jobs_per_user=2)


async def test_every_route_survives_random_requests(pg_settings, caplog):
    rng = random.Random(SEED)
    timeout = aiohttp.ClientTimeout(total=20)
    async with running_bot(pg_settings) as (bot, http), aiohttp.ClientSession() as fuzz:
        assert bot.url.startswith("http://127.0.0.1:")
        port = URL(bot.url).port
        jobs: list[str] = []
        stop = asyncio.Event()
        watch = asyncio.create_task(health_watch(http, stop))
        deadline = time.monotonic() + BUDGET_S
        sent = 0
        try:
            for sent in range(1, REQUESTS + 1):
                if time.monotonic() > deadline:
                    break
                req = a_request(rng, port, jobs)
                async with fuzz.request(req["method"], local_url(port, req["path"]),
                                        headers=req["headers"], data=req["data"], timeout=timeout,
                                        skip_auto_headers=["Content-Type"]) as response:
                    body = await response.read()
                    check_answer(req, response.status, response.content_type, body)
                if response.content_type == "application/json" and body:
                    answer = json.loads(body)
                    if isinstance(answer, dict) and isinstance(answer.get("job"), str):
                        jobs.append(answer["job"])
        except BaseException:
            print(f"fuzz seed {SEED}, request {sent}")
            raise
        finally:
            stop.set()
            worst = await watch
        async with http.get("/healthz") as response:
            assert response.status == 200
        assert worst < HEALTH_LIMIT_S, worst
        assert sent >= min(REQUESTS, 100), sent  # the budget must not starve the fuzz
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
