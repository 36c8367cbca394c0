"""Live previews in the progress message: private uploads shown by an image block, throttled,
each replacing (and deleting) the last, all gone when the job ends."""

from __future__ import annotations

import io

from PIL import Image

from tests.bot.helpers import big_photo

PREVIEW_INTERVAL_S = 0.3


def preview_uploads(fake) -> list[str]:
    """File ids of the uploads shared in no conversation: the previews."""
    return [c.args["files"][0]["id"] for c in fake.called("files.completeUploadExternal")
            if not c.args.get("channel_id")]


def preview_updates(fake) -> list[tuple[float, str]]:
    """(time, file id) of each chat.update that showed a preview it had not shown before."""
    shown, firsts = None, []
    for call in fake.called("chat.update"):
        ids = [b["slack_file"]["id"] for b in call.args.get("blocks") or [] if b.get("type") == "image"]
        if ids and ids[0] != shown:
            firsts.append((call.at, ids[0]))
        shown = ids[0] if ids else shown
    return firsts


async def all_previews_deleted(fake) -> None:
    """Every preview upload deleted; the last deletions follow the progress message's removal."""
    await fake.wait_for(lambda: preview_uploads(fake) and
                        sorted(fake.deleted_files) == sorted(preview_uploads(fake)),
                        what="every preview deleted")


async def start_preview_job(slack, fake, options: str) -> None:
    slack.bot.flow.preview_interval_s = PREVIEW_INTERVAL_S
    fake.share("C1", "U1", [fake.add_file(big_photo(), "photo.png")])
    status, _ = await slack.command("/stylize", f"method=toypreview {options}")
    assert status == 200


async def test_previews_show_in_the_progress_message_throttled_and_are_deleted_after_the_result(
        slack, fake):
    await start_preview_job(slack, fake, "steps=12 delay=0.1")
    [summary] = await fake.delivered()

    uploads = preview_uploads(fake)
    shown = preview_updates(fake)
    assert 2 <= len(shown) <= 5, shown  # 1.2 s of steps, one new preview per 0.3 s at most
    gaps = [b[0] - a[0] for a, b in zip(shown, shown[1:])]
    assert min(gaps) >= PREVIEW_INTERVAL_S * 0.95, gaps
    assert [file_id for _, file_id in shown] == uploads  # each upload shown once, in order
    for file_id in uploads:
        image = Image.open(io.BytesIO(fake.uploads[file_id]))
        assert image.format == "JPEG" and max(image.size) == 256 and len(fake.uploads[file_id]) < 20_000
    # Never posted into the conversation as files; all deleted once the result is there.
    await all_previews_deleted(fake)
    assert sorted(fake.deleted_files) == sorted(uploads)
    assert fake.result_image().format == "PNG"  # the result itself, not a preview
    progress = [m for m in fake.posted.values() if m is not summary]
    assert len(progress) == 1 and progress[0]["deleted"]


async def test_a_failed_job_after_previews_ends_with_the_failure_text_and_no_preview(slack, fake):
    await start_preview_job(slack, fake, "steps=4 delay=0.1 fail=user")
    [message] = await fake.wait_for(
        lambda: [m for m in fake.posted.values() if "did not finish" in (m.get("text") or "")],
        what="the failure text")
    assert message["text"] == f"⚠️ <@U1>, job `{message['text'].split('`')[1]}` did not finish: toy says no"
    assert not [b for b in message["blocks"] or [] if b.get("type") == "image"]
    assert preview_updates(fake)  # previews were shown before the failure
    await fake.wait_for(lambda: sorted(fake.deleted_files) == sorted(preview_uploads(fake)),
                        what="every preview deleted")
    assert not fake.results()


async def test_a_preview_slack_is_still_processing_is_shown_with_the_next_edit(slack, fake):
    fake.uploads_need_processing = True
    await start_preview_job(slack, fake, "steps=12 delay=0.1")
    await fake.delivered()
    refused = [c for c in fake.called("chat.update")
               if any(b.get("type") == "image" for b in c.args.get("blocks") or [])]
    shown = preview_updates(fake)
    assert shown and len(refused) > len(shown)  # each preview refused once, then sent again
    [progress] = [m for m in fake.posted.values() if m not in fake.results()]
    accepted = [e for e in progress["edits"] if any(b.get("type") == "image" for b in e["blocks"] or [])]
    assert accepted  # and then shown: the edits Slack accepted carry it
    await all_previews_deleted(fake)
