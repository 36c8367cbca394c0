"""/settings on Slack: admins (as for /stats) set workspace and channel settings; they bind."""

from __future__ import annotations


async def test_settings_non_admin_cannot_change_them_in_one_line(slack, fake):
    _, body = await slack.command("/settings", "channel methods=tint", user="U1")
    assert body == {"text": "⚠️ Only workspace admins can change /settings.", "response_type": "ephemeral"}
    _, body = await slack.command("/settings", "show", user="U1")
    assert body["text"].splitlines()[1] == "This channel (wins over the workspace's): nothing set"


async def test_settings_show_lists_them_and_allowed_methods_and_sd_bind(slack, fake, photo):
    fake.users["UA"] = {"is_admin": True}
    _, body = await slack.command("/settings", "server sd=no size=256 results=ephemeral", user="UA")
    assert body["text"].startswith("Saved.\nThis workspace: size=256 sd=no results=ephemeral")
    await slack.command("/settings", "channel methods=tint,toyprompt jobs_per_user=1", user="UA")
    _, body = await slack.command("/settings", "", user="U1")
    assert body["text"] == ("This workspace: size=256 sd=no results=ephemeral\n"
                            "This channel (wins over the workspace's): methods=tint,toyprompt "
                            "jobs_per_user=1\n"
                            "In force here: method hub, size 256, methods tint, toyprompt, no sd, "
                            "jobs per user 1, results ephemeral.")
    fake.share("C1", "U1", [fake.add_file(photo, "photo.png")])
    _, body = await slack.command("/stylize", "method=toy")  # refused in the ack, nothing fetched
    assert body["text"] == "⚠️ Method 'toy' is not allowed here; allowed: tint, toyprompt."
    assert not fake.downloads


async def test_settings_per_user_limit_and_default_method_bind(slack, fake, photo, service):
    fake.users["UA"] = {"is_admin": True}
    await slack.command("/settings", "channel method=tint jobs_per_user=1", user="UA")
    from tests.engine import toy_methods  # its gate holds the first job

    toy_methods.GATE.clear()
    fake.share("C1", "U1", [fake.add_file(photo, "photo.png")])
    await slack.command("/stylize", "method=toy wait=true")
    await fake.wait_for(lambda: service.queue.running_count or service.queue.waiting_count)
    await slack.command("/stylize", "method=toy")
    await fake.wait_for(lambda: any("queued or running here (this server's limit is 1)" in t
                                    for t in fake.ephemeral_texts()), what="the limit")
    toy_methods.GATE.set()
    await fake.delivered()
    await slack.command("/stylize", "seed=3")  # no method: the channel's default, tint
    summary = (await fake.delivered(2))[-1]
    assert "tint" in " ".join(b.get("text", {}).get("text", "") for b in summary["blocks"]
                              if b["type"] == "section")


async def test_settings_ephemeral_results_go_to_the_asker_alone(slack, fake, photo):
    """Slack's ephemeral messages cannot carry files: a private result goes to the asker's
    direct messages, and the channel only hears (privately) where to find it."""
    fake.users["UA"] = {"is_admin": True}
    await slack.command("/settings", "channel results=ephemeral", user="UA")
    fake.share("C1", "U1", [fake.add_file(photo, "photo.png")])
    await slack.command("/stylize", "method=tint steps=1")
    await fake.delivered()
    upload = fake.called("files.completeUploadExternal")[-1].args
    assert upload["channel_id"] == "DU1"  # the DM Slack opened with U1
    assert not [m for m in fake.posted.values() if m["channel"] == "C1" and not m["deleted"]]
    assert any("sent to you in a direct message" in t for t in fake.ephemeral_texts())
