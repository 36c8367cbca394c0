"""Stronger and Weaker move each method's `strength`, whatever its own name for it."""

import pytest

from engine.events import ResultMeta
from engine.methods import get_method
from engine.request import ImageUpload, Requester, StyleRequest
from stylebot.results import STRONGER, WEAKER, Result, nudged_option, result_actions, variant

ALICE = Requester("cli", "alice")


@pytest.mark.parametrize("method, moved", [
    ("hub", "strength"), ("fast", "strength"), ("adain", "strength"), ("sd", "strength"),
    ("gatys", "style_weight"),  # gatys' strength is its style_weight slider (docs/gatys.md)
    ("nada", None),
])
def test_each_method_nudges_the_option_strength_names(method, moved):
    option = nudged_option(method)
    assert (option.name if option else None) == moved


def result_of(method: str, **options) -> Result:
    m = get_method(method)
    typed = m.options.validate(options, method=method)
    request = StyleRequest(method=method, content=ImageUpload(b"x", "c.png"), requester=ALICE,
                           options=options)
    meta = ResultMeta(method=method, options=typed, seconds=1.0, device="cpu", seed=3)
    return Result(request, meta)


def test_adain_given_alpha_moves_strength_and_results_say_strength():
    result = result_of("adain", alpha="0.4")
    assert "alpha" not in result.meta.options and result.meta.options["strength"] == 0.4
    assert variant(result, STRONGER, ALICE).options == {"strength": 0.6}
    assert variant(result, WEAKER, ALICE).options == {"strength": 0.2}


def test_gatys_given_strength_moves_style_weight_on_its_log_slider():
    result = result_of("gatys", strength="0.5")
    assert result.meta.options["style_weight"] == 1e6 and "strength" not in result.meta.options
    assert variant(result, STRONGER, ALICE).options["style_weight"] == pytest.approx(10 ** 6.5)
    assert STRONGER in result_actions(result.meta) and WEAKER in result_actions(result.meta)


# -- settings inside result files (issue 16) ----------------------------------------------

def _image():
    from PIL import Image

    return Image.new("RGB", (24, 16), (9, 8, 7))


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "gif"])
def test_info_settings_round_trip_in_every_result_format(fmt):
    from engine.images import encode_result
    from stylebot.results import read_settings, reuse_command

    meta = ResultMeta(method="sd", options={"strength": 0.6, "steps": 2, "seed": 11}, seconds=1.0,
                      device="cpu", seed=11, size=(24, 16), prompt="a fox\nin snow")
    settings = read_settings(encode_result(_image(), meta, fmt=fmt).data)
    assert settings["method"] == "sd" and settings["seed"] == 11 and settings["size"] == [24, 16]
    assert settings["options"] == {"strength": 0.6, "steps": 2}
    assert settings["prompt"] == "a fox\nin snow"
    assert reuse_command(settings) == '/stylize method:sd strength:0.6 steps:2 seed:11 prompt:"a fox\nin snow"'


def test_info_settings_survive_the_jpeg_fallback_for_upload_limits():
    from engine.images import encode_result
    from stylebot.results import read_settings

    meta = ResultMeta(method="hub", options={"strength": 0.4}, seconds=1.0, device="cpu")
    encoded = encode_result(_image(), meta, max_bytes=10)  # too small for PNG: JPEG, then shrunk
    assert encoded.format == "jpg"
    assert read_settings(encoded.data)["options"] == {"strength": 0.4}


def test_info_metadata_never_holds_paths_user_ids_or_presets():
    from engine.images import encode_result
    from engine.resultinfo import settings_of

    meta = ResultMeta(method="sd", options={"model": "/srv/models/my-sd", "scheduler": "ddim",
                                            "negative_prompt": r"C:\Users\op\x"},
                      seconds=1.0, device="cuda:0", seed=None, extra={"user": "U123", "preset": "night"})
    assert settings_of(meta)["options"] == {"scheduler": "ddim"}
    data = encode_result(_image(), meta).data
    for secret in (b"/srv", b"Users", b"U123", b"night", b"cuda"):
        assert secret not in data


@pytest.mark.parametrize("text, message", [
    ("{not json", "The Stylebot settings in this image are damaged (not JSON); they cannot be read."),
    ("[1, 2]", "The Stylebot settings in this image are damaged (not an object); they cannot be read."),
    ('{"method": "hub", "options": {"a": [1]}}',
     "The Stylebot settings in this image are damaged (bad options); they cannot be read."),
    ('{"method": "hub", "seed": "7"}',
     "The Stylebot settings in this image are damaged (bad seed); they cannot be read."),
    ('{"method": "mystery\\nx"}', "This image was made with method 'mystery\\nx', which this Stylebot "
                                  "does not have."),
])
def test_info_malformed_settings_are_refused_in_one_line(text, message):
    import io

    from PIL.PngImagePlugin import PngInfo

    from engine.errors import UserError
    from stylebot.results import read_settings

    info = PngInfo()
    info.add_text("stylebot", text)
    buffer = io.BytesIO()
    _image().save(buffer, format="PNG", pnginfo=info)
    with pytest.raises(UserError) as caught:
        read_settings(buffer.getvalue())
    assert caught.value.message == message


def test_info_an_image_without_settings_reads_none():
    import io

    from stylebot.results import read_settings

    buffer = io.BytesIO()
    _image().save(buffer, format="PNG")
    assert read_settings(buffer.getvalue()) is None


def test_queue_and_stats_text_pieces():
    from stylebot.results import duration_text, queue_line, stats_lines
    from stylebot.service import QueuedJob
    from storage.jobs import MethodStats

    assert [duration_text(s) for s in (0.2, 42, 89.4, 600, 3900)] == ["1 s", "42 s", "89 s", "10 min",
                                                                      "1 h 5 min"]
    assert queue_line(QueuedJob("ab12", "hub", 0, "running", 12.0)) == "ab12 hub: running now, about 12 s left"
    assert queue_line(QueuedJob("cd34", "sd", 2, "queued")) == "cd34 sd: position 2"
    stats = [MethodStats("hub", 4, {"done": 3, "failed": 1}, [1.0, 2.0, 30.0], [("timeout\nx", 1)])]
    assert stats_lines(stats) == ["hub: 4 jobs (3 done, 1 failed); median 2 s, p95 30 s",
                                  "  failed 1x: timeout\\nx"]
    assert stats_lines([]) == ["No jobs in the log yet."]
