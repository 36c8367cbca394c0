"""A local aiohttp server that plays Discord for discord.py: REST API, CDN and gateway.

discord.py is pointed at it through ``discord.http.Route.BASE`` and talks to it with its
own HTTP code. It records every interaction callback, webhook edit and follow-up (with
multipart file uploads), channel message and command sync; it serves attachment bytes
like the CDN; and a minimal gateway (HELLO, READY, heartbeat ACKs) lets the real client
connect and receive INTERACTION_CREATE events. Payload builders make interactions the
way the gateway delivers them: raw dicts with resolved attachments.

Tokens die like Discord's: webhook calls with an interaction token older than 15 minutes,
or one expired with ``expire``, get 401 ``Invalid Webhook Token`` (code 50027).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import discord
from aiohttp import WSMsgType, web

APP_ID = 900000000000000001
BOT_ID = 900000000000000002
GUILD_ID = 900000000000000003
CHANNEL_ID = 900000000000000004
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
TOKEN = "test-token"  # the bot token the fake accepts
BOT_USER = {"id": str(BOT_ID), "username": "stylebot", "discriminator": "0", "global_name": "Stylebot",
            "avatar": None, "bot": True, "flags": 0}


def user(user_id: int, name: str) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name.title(),
            "avatar": None, "flags": 0}


ALICE = user(111111111111111111, "alice")
BOB = user(222222222222222222, "bob")


@dataclass
class Upload:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One HTTP request discord.py made, as the fake saw it."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any = None
    files: list[Upload] = field(default_factory=list)
    status: int = 200
    at: float = field(default_factory=time.monotonic)
    response: Any = None

    @property
    def content(self) -> str:
        return (self.json or {}).get("content") or ""

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for row in (self.json or {}).get("components") or []
                for c in row.get("components", []) if "custom_id" in c]


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()


class FakeDiscord:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.downloads: list[str] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self._cdn: dict[str, tuple[bytes, str]] = {}
        self._tokens: dict[str, dict[str, Any]] = {}  # token -> {"created", "expired", "original"}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._shard_of: dict[web.WebSocketResponse, list[int]] = {}  # [id, count] from IDENTIFY
        self.identifies: list[dict[str, Any]] = []  # every IDENTIFY's "d", in order
        self.gateway_shards = 1  # what GET /gateway/bot recommends
        self._seq = itertools.count(1)
        self.token = TOKEN
        self.forbidden_channels: set[str] = set()  # the bot lacks Send Messages there
        self.runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._api)
        app.router.add_get("/cdn/{tail:.*}", self._serve_cdn)
        app.router.add_get("/gateway", self._gateway)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return self.root.replace("http", "ws", 1) + "/gateway"

    @property
    def api(self) -> str:
        return self.root + "/api/v10"

    # -- what tests look at ----------------------------------------------------------------

    def find(self, method: str, path_part: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and path_part in c.path]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every request); return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                summary = "\n".join(f"{c.method} {c.path} {c.status} {str(c.json)[:200]}" for c in self.calls)
                raise AssertionError(f"timed out; requests so far:\n{summary}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
            except asyncio.TimeoutError:
                pass

    async def wait_call(self, method: str, path_part: str, *, n: int = 1,
                        where: Callable[[Call], bool] = lambda c: True, timeout: float = 15.0) -> Call:
        calls = await self.wait_for(
            lambda: (lambda found: found if len(found) >= n else None)(
                [c for c in self.find(method, path_part) if where(c)]), timeout)
        return calls[n - 1]

    def original(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The message that answered an interaction (as Discord holds it now)."""
        return self.messages[self._tokens[payload["token"]]["original"]]

    def expire(self, token: str) -> None:
        self._tokens[token]["expired"] = True

    # -- payloads as the gateway delivers them -----------------------------------------------

    def attachment(self, data: bytes, filename: str, content_type: str | None = "image/png", *,
                   size: int | None = None, host: str | None = None) -> dict[str, Any]:
        """Put bytes on the fake CDN and describe them the way Discord does."""
        attachment_id = self.snowflake()
        path = f"/cdn/attachments/{CHANNEL_ID}/{attachment_id}/{filename}"
        self._cdn[path] = (data, content_type or "application/octet-stream")
        url = (host or self.root) + path
        payload = {"id": str(attachment_id), "filename": filename, "size": len(data) if size is None else size,
                   "url": url, "proxy_url": url}
        if content_type is not None:
            payload["content_type"] = content_type
        return payload

    def snowflake(self, at: dt.datetime | None = None) -> int:
        moment = at or discord.utils.utcnow()
        return discord.utils.time_snowflake(moment) + next(self._ids)

    def _base(self, kind: int, who: dict[str, Any], *, age: dt.timedelta = dt.timedelta(0),
              upload_limit: int = DEFAULT_UPLOAD_LIMIT) -> dict[str, Any]:
        created = discord.utils.utcnow() - age
        interaction_id = self.snowflake(created)
        token = f"tok{interaction_id}"
        self._tokens[token] = {"created": created, "expired": False, "original": None, "id": interaction_id}
        return {
            "id": str(interaction_id), "application_id": str(APP_ID), "type": kind, "token": token,
            "version": 1, "guild_id": str(GUILD_ID), "channel_id": str(CHANNEL_ID),
            "channel": {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "art",
                        "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None,
                        "topic": None, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0},
            "member": {"user": who, "roles": [], "joined_at": "2025-01-01T00:00:00+00:00", "deaf": False,
                       "mute": False, "flags": 0, "permissions": "2248473465835073", "nick": None,
                       "avatar": None, "pending": False},
            "app_permissions": "2248473465835073", "locale": "en-US", "guild_locale": "en-US",
            "entitlements": [], "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0,
            "attachment_size_limit": upload_limit,
        }

    def slash(self, name: str, options: dict[str, Any] | None = None, *, who: dict[str, Any] = ALICE,
              sub: str | None = None, autocomplete: str | None = None, **base: Any) -> dict[str, Any]:
        """A chat-input command (``sub``: its subcommand); attachments are ``attachment`` payloads."""
        payload = self._base(4 if autocomplete else 2, who, **base)
        opts, resolved = [], {}
        for key, value in (options or {}).items():
            if isinstance(value, dict):  # an attachment
                resolved[value["id"]] = value
                opts.append({"name": key, "type": 11, "value": value["id"]})
            else:
                kind = {bool: 5, int: 4, float: 10, str: 3}[type(value)]
                opts.append({"name": key, "type": kind, "value": value})
            if key == autocomplete:
                opts[-1]["focused"] = True
        if sub is not None:
            opts = [{"name": sub, "type": 1, "options": opts}]
        data: dict[str, Any] = {"id": str(self.snowflake()), "name": name, "type": 1, "options": opts}
        if resolved:
            data["resolved"] = {"attachments": resolved}
        payload["data"] = data
        return payload

    def message_command(self, name: str, message: dict[str, Any], *, who: dict[str, Any] = ALICE,
                        **base: Any) -> dict[str, Any]:
        payload = self._base(2, who, **base)
        payload["data"] = {"id": str(self.snowflake()), "name": name, "type": 3, "target_id": message["id"],
                           "resolved": {"messages": {message["id"]: message}}}
        return payload

    def component(self, message: dict[str, Any], custom_id: str, *, who: dict[str, Any] = ALICE,
                  values: list[str] | None = None, **base: Any) -> dict[str, Any]:
        """A click on a button (or a choice in a select) of a message the fake holds."""
        payload = self._base(3, who, **base)
        kind = next(c["type"] for row in message["components"] for c in row["components"]
                    if c.get("custom_id") == custom_id)
        payload["data"] = {"custom_id": custom_id, "component_type": kind}
        if values is not None:
            payload["data"]["values"] = values
        payload["message"] = message
        return payload

    def modal_submit(self, custom_id: str, fields: dict[str, str], *, who: dict[str, Any] = ALICE,
                     **base: Any) -> dict[str, Any]:
        payload = self._base(5, who, **base)
        payload["data"] = {"custom_id": custom_id, "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in fields.items()]}
        return payload

    def user_message(self, attachments: list[dict[str, Any]], who: dict[str, Any] = BOB) -> dict[str, Any]:
        """Somebody's message in the channel, e.g. the target of a message command."""
        return {"id": str(self.snowflake()), "channel_id": str(CHANNEL_ID), "type": 0, "content": "look",
                "author": who, "timestamp": _iso(discord.utils.utcnow()), "edited_timestamp": None,
                "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
                "attachments": attachments, "embeds": [], "components": [], "pinned": False, "flags": 0}

    # -- the REST API ----------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        call = Call(request.method, path, dict(request.query))
        if request.content_type == "application/json":
            call.json = await request.json()
        elif request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    call.json = json.loads(await part.text())
                else:
                    call.files.append(Upload(part.name or "", part.filename or "",
                                             part.headers.get("Content-Type", ""), bytes(await part.read())))
        if request.headers.get("Authorization", "Bot " + self.token) != "Bot " + self.token:
            status, body = 401, {"message": "401: Unauthorized", "code": 0}
        else:
            status, body = self._answer(call)
        call.status, call.response = status, body
        self.calls.append(call)
        self._changed.set()
        if body is None:
            return web.Response(status=status)
        return web.Response(status=status, body=json.dumps(body).encode(),
                            headers={"Content-Type": "application/json"})

    def _answer(self, call: Call) -> tuple[int, Any]:
        parts = call.path.strip("/").split("/")
        m = call.method
        if call.path == "/users/@me" and m == "GET":
            return 200, BOT_USER
        if call.path == "/oauth2/applications/@me":
            return 200, {"id": str(APP_ID), "name": "Stylebot", "description": "", "icon": None,
                         "bot_public": True, "bot_require_code_grant": False, "owner": user(1, "owner"),
                         "verify_key": "0" * 64, "flags": 0, "team": None, "summary": ""}
        if call.path == "/gateway/bot":
            return 200, {"url": self.gateway_url, "shards": self.gateway_shards,
                         "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0,
                                                 "max_concurrency": 1}}
        if parts[0] == "interactions" and parts[-1] == "callback":
            return 200, self._callback(parts[1], parts[2], call.json or {}, call.files)
        if parts[0] == "webhooks":
            token = parts[2]
            if self._token_dead(token):
                return 401, {"message": "Invalid Webhook Token", "code": 50027}
            if len(parts) == 3 and m == "POST":  # follow-up
                return 200, self._new_message(call.json or {}, call.files, webhook=True)
            message_id = parts[4]
            if message_id == "@original":
                message_id = self._tokens[token]["original"]
            if m == "PATCH":
                return 200, self._edit_message(message_id, call.json or {}, call.files)
            if m == "DELETE":
                self.messages.pop(message_id, None)
                return 204, None
            return 200, self.messages[message_id]
        if call.path == "/users/@me/channels" and m == "POST":
            recipient = str(call.json["recipient_id"])
            return 200, {"id": str(10**17 + int(recipient) % 10**17), "type": 1, "last_message_id": None,
                         "recipients": [{**ALICE, "id": recipient}]}
        if parts[0] == "channels" and len(parts) >= 3 and parts[2] == "messages":
            if parts[1] in self.forbidden_channels:
                return 403, {"message": "Missing Permissions", "code": 50013}
            if m == "POST":
                return 200, self._new_message(call.json or {}, call.files, channel_id=parts[1])
            if m == "PATCH":
                return 200, self._edit_message(parts[3], call.json or {}, call.files)
            if m == "DELETE":
                self.messages.pop(parts[3], None)
                return 204, None
        if parts[0] == "applications" and m == "PUT":
            return 200, [{"description": "", "options": [], **cmd, "id": str(self.snowflake()), "application_id": str(APP_ID), "version": "1",
                          "default_member_permissions": None, "dm_permission": True, "nsfw": False,
                          **({"guild_id": parts[3]} if parts[2] == "guilds" else {})}
                         for cmd in call.json]
        return 404, {"message": f"fake Discord has no {m} {call.path}", "code": 0}

    def _token_dead(self, token: str) -> bool:
        info = self._tokens.get(token)
        if info is None:
            return True
        return info["expired"] or discord.utils.utcnow() - info["created"] > dt.timedelta(minutes=15)

    def _callback(self, interaction_id: str, token: str, body: dict[str, Any],
                  files: list[Upload]) -> dict[str, Any]:
        kind = body.get("type")
        data = body.get("data") or {}
        interaction = {"id": interaction_id, "type": 2}
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 5):
            message = self._new_message(data, files, webhook=True)
            self._tokens[token]["original"] = message["id"]
            interaction.update(response_message_id=message["id"], response_message_loading=kind == 5,
                               response_message_ephemeral=bool((data.get("flags") or 0) & 64))
            resource["message"] = message
        return {"interaction": interaction, "resource": resource}

    def _new_message(self, body: dict[str, Any], files: list[Upload], *, webhook: bool = False,
                     channel_id: str = str(CHANNEL_ID)) -> dict[str, Any]:
        message_id = str(self.snowflake())
        message = {"id": message_id, "channel_id": channel_id, "type": 0, "content": "",
                   "author": BOT_USER, "timestamp": _iso(discord.utils.utcnow()), "edited_timestamp": None,
                   "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
                   "attachments": [], "embeds": [], "components": [], "pinned": False, "flags": 0,
                   "application_id": str(APP_ID), "guild_id": str(GUILD_ID)}
        if webhook:
            message["webhook_id"] = str(APP_ID)
        self.messages[message_id] = message
        return self._edit_message(message_id, body, files)

    def _edit_message(self, message_id: str, body: dict[str, Any], files: list[Upload]) -> dict[str, Any]:
        message = self.messages[message_id]
        for key in ("content", "embeds", "components", "flags"):
            if key in body and body[key] is not None:
                message[key] = body[key]
        uploads = {upload.field: upload for upload in files}
        if body.get("attachments") is not None:
            # As Discord: the message keeps the listed attachments (by id) and gains the new
            # files listed by index (multipart part ``files[n]``); everything else is removed.
            kept = {a["id"]: a for a in message["attachments"]}
            listed = []
            for item in body["attachments"]:
                if isinstance(item["id"], int):
                    upload = uploads[f"files[{item['id']}]"]
                    listed.append(self.attachment(upload.data, item.get("filename") or upload.filename,
                                                  upload.content_type))
                elif str(item["id"]) in kept:
                    listed.append(kept[str(item["id"])])
            message["attachments"] = listed
        elif files:
            message["attachments"] = [*message["attachments"], *(
                self.attachment(u.data, u.filename, u.content_type) for u in files)]
        message["edited_timestamp"] = _iso(discord.utils.utcnow())
        return message

    async def _serve_cdn(self, request: web.Request) -> web.Response:
        path = request.path
        self.downloads.append(path)
        self._changed.set()
        if path not in self._cdn:
            return web.Response(status=404)
        data, content_type = self._cdn[path]
        return web.Response(body=data, headers={"Content-Type": content_type})

    # -- the gateway -----------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45000}})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame["op"] == 1:
                await ws.send_json({"op": 11})
            elif frame["op"] == 2:
                self.identifies.append(frame["d"])
                ready = {"v": 10, "user": BOT_USER, "guilds": [], "session_id": "fake-session",
                         "resume_gateway_url": self.gateway_url,
                         "application": {"id": str(APP_ID), "flags": 0}}
                if "shard" in frame["d"]:
                    self._shard_of[ws] = ready["shard"] = list(frame["d"]["shard"])
                self._changed.set()
                await self._dispatch(ws, "READY", ready)
        self._sockets.remove(ws)
        self._shard_of.pop(ws, None)
        return ws

    async def _dispatch(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        await ws.send_json({"op": 0, "t": event, "s": next(self._seq), "d": data})

    async def send_interaction(self, payload: dict[str, Any], *, shard: int | None = None) -> None:
        """Deliver an interaction over the gateway to every connected client, or only over
        the connection that identified as ``shard``."""
        for ws in list(self._sockets):
            if shard is None or self._shard_of.get(ws, [None])[0] == shard:
                await self._dispatch(ws, "INTERACTION_CREATE", payload)
