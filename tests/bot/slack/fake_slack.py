"""A local aiohttp server that plays Slack: its Web API, file hosting, response URLs and
the Socket Mode websocket, recording every call the adapter makes.

It behaves like Slack where the adapter depends on it: GET and POST for API methods,
form or JSON arguments, ``invalid_auth`` for a wrong token, the three-step
``files_upload_v2`` upload (with no channel the file stays private, shared nowhere),
``files.delete``, image blocks that show an uploaded file (``slack_file``: ``invalid_blocks``
for a file that is unknown, deleted or not an image), and a sign-in HTML page (status 200)
for a file download without the bot token.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import WSMsgType, web

BOT_USER = "UBOT"
TEAM = "T0TEST"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    http_method: str
    token: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeSlack:
    bot_token: str
    app_token: str | None = None
    calls: list[Call] = field(default_factory=list)
    posted: dict[str, dict] = field(default_factory=dict)  # ts -> message the bot posted
    history: dict[str, list[dict]] = field(default_factory=dict)  # channel -> messages people sent
    files: dict[str, dict] = field(default_factory=dict)
    file_bytes: dict[str, bytes] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    deleted_files: list[str] = field(default_factory=list)
    # Slack may refuse to show a file it is still processing: with this set, each fresh
    # upload is refused (invalid_blocks) the first time a block names it.
    uploads_need_processing: bool = False
    processing: set[str] = field(default_factory=set)
    responses: list[dict] = field(default_factory=list)  # posts to response_url
    downloads: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    fail: dict[str, str] = field(default_factory=dict)  # API method -> error to answer with
    socket_acks: list[dict] = field(default_factory=list)
    users: dict[str, dict] = field(default_factory=dict)  # user id -> users.info's user (admins)
    usergroups: dict[str, list[str]] = field(default_factory=dict)  # group id -> member ids
    base: str = ""

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._socket: web.WebSocketResponse | None = None
        self._socket_open = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> "FakeSlack":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{path:.*}", self._file)
        app.router.add_post("/response/{id}", self._response)
        app.router.add_get("/socket", self._ws)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    # -- what tests arrange -------------------------------------------------------------------

    def add_file(self, data: bytes, name: str = "photo.png", mimetype: str = "image/png",
                 user: str = "U1", size: int | None = None) -> dict:
        file_id = f"F{next(self._ids):04d}"
        info = {"id": file_id, "name": name, "title": name, "mimetype": mimetype,
                "filetype": name.rsplit(".", 1)[-1], "size": len(data) if size is None else size,
                "user": user,
                "url_private": f"{self.base}/files-pri/{TEAM}-{file_id}/{name}",
                "url_private_download": f"{self.base}/files-pri/{TEAM}-{file_id}/download/{name}",
                "permalink": f"https://test.slack.com/files/{user}/{file_id}/{name}"}
        self.files[file_id] = info
        self.file_bytes[file_id] = data
        return info

    def share(self, channel: str, user: str, files: list[dict], *, text: str = "",
              age_s: float = 5.0, thread_ts: str | None = None) -> dict:
        """A message someone posted in ``channel`` (``age_s`` ago), as history returns it.

        Like Slack, each file then lists the conversation among those it is shared in.
        """
        for file in files:
            if file.get("id") in self.files:
                self.files[file["id"]].setdefault("channels", []).append(channel)
        ts = f"{time.time() - age_s:.6f}"
        message = {"type": "message", "user": user, "text": text, "ts": ts, "files": files}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.history.setdefault(channel, []).append(message)
        return message

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def results(self) -> list[dict]:
        """The bot's result summaries (the messages with the result buttons), oldest first."""
        return [m for m in self.posted.values() if any(
            b.get("block_id", "").startswith("result_") for b in m.get("blocks") or [])]

    def result_image(self, n: int = -1):
        """The n-th uploaded result as a PIL image."""
        import io

        from PIL import Image

        shared = [c for c in self.called("files.completeUploadExternal") if c.args.get("channel_id")]
        file_id = shared[n].args["files"][0]["id"]
        return Image.open(io.BytesIO(self.uploads[file_id]))

    async def delivered(self, count: int = 1, timeout: float = 15.0) -> list[dict]:
        """Wait for ``count`` results, each fully delivered (its progress message removed)."""
        def done():
            progress_left = [m for m in self.posted.values() if m not in self.results()
                             and not m["deleted"]]
            return len(self.results()) >= count and not progress_left and self.results()
        return await self.wait_for(done, timeout, what=f"{count} delivered result(s)")

    def ephemeral_texts(self) -> list[str]:
        return ([c.args.get("text", "") for c in self.called("chat.postEphemeral")]
                + [r.get("text", "") for r in self.responses])

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what or predicate}; calls: "
                             f"{[c.method for c in self.calls]}; ephemeral: {self.ephemeral_texts()}")

    # -- Socket Mode -----------------------------------------------------------------------------

    async def send_envelope(self, kind: str, payload: dict, envelope_id: str = "env-1") -> None:
        await asyncio.wait_for(self._socket_open.wait(), 10)
        assert self._socket is not None
        await self._socket.send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                      "accepts_response_payload": kind != "events_api",
                                      "retry_attempt": 0, "retry_reason": ""})

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._socket = ws
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0TEST"}})
        self._socket_open.set()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(message.data))
        return ws

    # -- HTTP ------------------------------------------------------------------------------------

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        for key in ("blocks", "view", "files"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        self.calls.append(Call(method, args, request.method, token))
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != wanted:
            return _json({"ok": False, "error": "invalid_auth"})
        if method in self.fail:
            return _json({"ok": False, "error": self.fail[method]})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _json({"ok": False, "error": "unknown_method"})
        return _json(handler(args))

    def _m_auth_test(self, args):
        return {"ok": True, "url": "https://test.slack.com/", "team": "Test", "user": "stylebot",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B0TEST"}

    def _m_apps_connections_open(self, args):
        return {"ok": True, "url": self.base.replace("http", "ws") + "/socket"}

    def _bad_slack_file(self, blocks) -> dict | None:
        """What Slack answers for an image block whose file cannot be shown, else None."""
        for i, block in enumerate(blocks or []):
            file_id = (block.get("slack_file") or {}).get("id") if block.get("type") == "image" else None
            if file_id is None:
                continue
            info = self.files.get(file_id)
            if file_id in self.processing:
                self.processing.discard(file_id)
                return {"ok": False, "error": "invalid_blocks",
                        "errors": [f"file not ready [json-pointer:/blocks/{i}/slack_file]"]}
            if (info is None or file_id not in self.uploads
                    or not info["name"].lower().endswith((".png", ".jpg", ".jpeg", ".gif"))):
                return {"ok": False, "error": "invalid_blocks",
                        "errors": [f"invalid slack file [json-pointer:/blocks/{i}/slack_file]"]}
        return None

    def _m_chat_postMessage(self, args):
        if bad := self._bad_slack_file(args.get("blocks")):
            return bad
        ts = f"{1700000000 + next(self._ts)}.000100"
        self.posted[ts] = {**args, "ts": ts, "edits": [], "deleted": False}
        return {"ok": True, "channel": args["channel"], "ts": ts, "message": {"text": args.get("text")}}

    def _m_conversations_open(self, args):
        user = str(args.get("users", ""))
        return {"ok": True, "channel": {"id": f"D{user}"}}

    def _m_chat_update(self, args):
        message = self.posted.get(args.get("ts"))
        if message is None or message["deleted"]:
            return {"ok": False, "error": "message_not_found"}
        if bad := self._bad_slack_file(args.get("blocks")):
            return bad
        message["edits"].append({"text": args.get("text"), "blocks": args.get("blocks")})
        message.update(text=args.get("text"), blocks=args.get("blocks"))
        return {"ok": True, "channel": args["channel"], "ts": args["ts"]}

    def _m_chat_delete(self, args):
        message = self.posted.get(args.get("ts"))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message["deleted"] = True
        return {"ok": True, "channel": args["channel"], "ts": args["ts"]}

    def _m_chat_postEphemeral(self, args):
        return {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}

    def _m_conversations_history(self, args):
        oldest = float(args.get("oldest") or 0)
        messages = [m for m in self.history.get(args["channel"], [])
                    if float(m["ts"]) >= oldest and m.get("thread_ts") in (None, m["ts"])]
        return {"ok": True, "messages": sorted(messages, key=lambda m: -float(m["ts"])),
                "has_more": False}

    def _m_conversations_replies(self, args):
        root = args["ts"]
        oldest = float(args.get("oldest") or 0)
        thread = [m for m in self.history.get(args["channel"], [])
                  if (m["ts"] == root or m.get("thread_ts") == root) and float(m["ts"]) >= oldest]
        return {"ok": True, "messages": sorted(thread, key=lambda m: float(m["ts"])), "has_more": False}

    def _m_files_info(self, args):
        info = self.files.get(args.get("file"))
        return {"ok": True, "file": info} if info else {"ok": False, "error": "file_not_found"}

    def _m_files_delete(self, args):
        file_id = args.get("file")
        if self.files.pop(file_id, None) is None:
            return {"ok": False, "error": "file_not_found"}
        self.file_bytes.pop(file_id, None)  # its uploaded bytes stay in ``uploads`` for tests
        self.deleted_files.append(file_id)
        return {"ok": True}

    def _m_files_getUploadURLExternal(self, args):
        file_id = f"FUP{next(self._ids):04d}"
        self.files[file_id] = {"id": file_id, "name": args["filename"], "length": int(args["length"])}
        return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args):
        shared = []
        for item in args["files"]:
            info = self.files[item["id"]]
            info.update(title=item.get("title"), channel=args.get("channel_id"),
                        thread_ts=args.get("thread_ts"))
            if self.uploads_need_processing:
                self.processing.add(item["id"])
            shared.append(info)
        return {"ok": True, "files": shared}

    def _m_users_info(self, args):
        user = args.get("user", "")
        return {"ok": True, "user": {"id": user, "name": user.lower(), "is_admin": False,
                                     "is_owner": False, **self.users.get(user, {})}}

    def _m_usergroups_users_list(self, args):
        group = args.get("usergroup", "")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": self.usergroups[group]}

    def _m_views_open(self, args):
        return {"ok": True, "view": {"id": f"V{next(self._ids):04d}", **args["view"]}}

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["file_id"]] = await request.read()
        return web.Response(text="OK - 200")

    async def _file(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        self.downloads.append((request.path, auth))
        if auth != f"Bearer {self.bot_token}":  # what Slack does: a sign-in page, status 200
            return web.Response(text="<html><body>Sign in to Slack</body></html>",
                                content_type="text/html")
        file_id = request.match_info["path"].split("/", 1)[0].split("-", 1)[1]
        if file_id not in self.file_bytes:
            return web.Response(status=404)
        return web.Response(body=self.file_bytes[file_id],
                            content_type=self.files[file_id]["mimetype"])

    async def _response(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")


def _json(data: dict) -> web.Response:
    return web.Response(text=json.dumps(data), content_type="application/json")
