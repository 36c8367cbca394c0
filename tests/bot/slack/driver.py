"""Signed Slack requests for the adapter's HTTP endpoint, shaped like Slack's own payloads."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from .fake_slack import BOT_USER, TEAM, FakeSlack

APP_ID = "A0TEST"


class SlackDriver:
    """Posts correctly signed commands, interactions and events, as Slack would."""

    def __init__(self, http: aiohttp.ClientSession, url: str, secret: str, fake: FakeSlack, bot) -> None:
        self.http = http
        self.url = url
        self.secret = secret
        self.fake = fake
        self.bot = bot
        self._n = itertools.count(1)

    def signed_headers(self, body: str, *, timestamp: int | None = None, secret: str | None = None,
                       content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret or self.secret).generate_signature(timestamp=ts, body=body)
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
                "Content-Type": content_type}

    async def post(self, body: str, *, content_type: str = "application/x-www-form-urlencoded",
                   headers: dict[str, str] | None = None, **sign: Any) -> tuple[int, Any]:
        all_headers = {**self.signed_headers(body, content_type=content_type, **sign), **(headers or {})}
        async with self.http.post(self.url, data=body.encode(), headers=all_headers) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text) if text else None
            except ValueError:
                return resp.status, text

    # -- payloads -------------------------------------------------------------------------------

    def command_body(self, command: str, text: str = "", *, user: str = "U1", channel: str = "C1",
                     **extra: Any) -> str:
        n = next(self._n)
        form = {"token": "legacy", "team_id": TEAM, "team_domain": "test", "channel_id": channel,
                "channel_name": "general", "user_id": user, "user_name": user.lower(),
                "command": command, "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false",
                "response_url": f"{self.fake.base}/response/{n}", "trigger_id": f"trigger-{n}", **extra}
        return urlencode(form)

    async def command(self, command: str, text: str = "", **kw: Any) -> tuple[int, Any]:
        return await self.post(self.command_body(command, text, **kw))

    async def interaction(self, payload: dict[str, Any], **sign: Any) -> tuple[int, Any]:
        payload = {"team": {"id": TEAM, "domain": "test"}, "api_app_id": APP_ID, "token": "legacy",
                   **payload}
        return await self.post(urlencode({"payload": json.dumps(payload)}), **sign)

    async def click(self, message_ts: str, action_id: str, value: str, *, user: str = "U1",
                    channel: str = "C1") -> tuple[int, Any]:
        n = next(self._n)
        message = self.fake.posted[message_ts]
        return await self.interaction({
            "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "trigger_id": f"trigger-{n}", "response_url": f"{self.fake.base}/response/{n}",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                          "is_ephemeral": False},
            "channel": {"id": channel, "name": "general"},
            "message": {"type": "message", "ts": message_ts, "text": message.get("text"),
                        "blocks": message.get("blocks")},
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value,
                         "action_ts": f"{time.time():.6f}"}]})

    async def submit(self, view: dict[str, Any], *, user: str = "U1", **filled: Any) -> tuple[int, Any]:
        """Submit a modal the adapter opened, with its initial values and ``filled`` changes."""
        return await self.interaction({
            "type": "view_submission", "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "trigger_id": f"trigger-{next(self._n)}",
            "view": {"id": "V1", "type": "modal", "callback_id": view["callback_id"],
                     "private_metadata": view.get("private_metadata", ""),
                     "state": {"values": form_values(view, filled)}}})

    async def shortcut(self, message: dict[str, Any], *, user: str = "U1", channel: str = "C1",
                       callback_id: str = "stylebot_restyle"):
        n = next(self._n)
        return await self.interaction({
            "type": "message_action", "callback_id": callback_id, "trigger_id": f"trigger-{n}",
            "response_url": f"{self.fake.base}/response/{n}", "message_ts": message["ts"],
            "channel": {"id": channel, "name": "general"},
            "user": {"id": user, "username": user.lower(), "team_id": TEAM}, "message": message})

    def event_body(self, event: dict[str, Any]) -> str:
        return json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": APP_ID,
                           "type": "event_callback", "event_id": f"Ev{next(self._n)}",
                           "event_time": int(time.time()), "event": event,
                           "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}]})

    async def mention(self, text: str, *, user: str = "U1", channel: str = "C1",
                      files: list[dict] | None = None, thread_ts: str | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any]:
        ts = f"{time.time():.6f}"
        event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER}> {text}", "ts": ts,
                 "channel": channel, "event_ts": ts}
        if files:
            event["files"] = files
        if thread_ts:
            event["thread_ts"] = thread_ts
        return await self.post(self.event_body(event), content_type="application/json", headers=headers)


def form_values(view: dict[str, Any], filled: dict[str, Any]) -> dict[str, Any]:
    """state.values as Slack sends them: every input block, initial values unless changed."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        element = block["element"]
        block_id, kind = block["block_id"], element["type"]
        given = filled.get(block_id)
        if kind == "file_input":
            state = {"type": kind, "files": given or []}
        elif kind == "static_select":
            if given is not None:
                option = next(o for o in element["options"] if o["value"] == given)
            else:
                option = element.get("initial_option")
            state = {"type": kind, "selected_option": option}
        elif kind == "checkboxes":
            state = {"type": kind, "selected_options": [{"value": v} for v in (given or [])]}
        else:
            state = {"type": kind, "value": given if given is not None else element.get("initial_value")}
        values[block_id] = {element["action_id"]: state}
    return values
