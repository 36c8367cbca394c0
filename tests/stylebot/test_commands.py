"""The shared command parser: Discord's slash syntax typed as text, for every text front end."""

from __future__ import annotations

import pytest

from stylebot.commands import (CommandError, ParsedCommand, build_request, parse_command, parse_flag,
                               quote)
from engine.errors import OptionError, UserError
from engine.request import ImageUpload, Requester

ME = Requester("playground", "local")


def test_stylize_with_method_and_options():
    cmd = parse_command("/stylize method:adain strength:0.5")
    assert cmd == ParsedCommand(name="stylize", method="adain", options={"strength": "0.5"})


def test_a_method_is_its_own_command():
    cmd = parse_command("/sd prompt:a watercolour fox strength:0.6")
    assert cmd.name == "stylize" and cmd.method == "sd"
    assert cmd.prompt == "a watercolour fox"
    assert cmd.options == {"strength": "0.6"}


@pytest.mark.parametrize("text", [
    '/sd prompt:"a watercolour fox" strength:0.6',
    "/sd prompt:'a watercolour fox' strength:0.6",
    "/sd prompt:\u201ca watercolour fox\u201d strength:0.6",  # a phone's smart quotes
    "/sd prompt=\"a watercolour fox\" strength=0.6",
    "/sd strength:0.6 prompt:a watercolour fox",
    "/sd a watercolour fox strength:0.6",  # bare words are the prompt
    "/sd prompt: a watercolour fox   strength: 0.6",
])
def test_prompt_spellings_agree(text):
    cmd = parse_command(text)
    assert (cmd.method, cmd.prompt, cmd.options) == ("sd", "a watercolour fox", {"strength": "0.6"})


def test_quoted_values_keep_everything_inside():
    cmd = parse_command(r'/sd prompt:"say \"cheese\", style:baroque \\ done" seed:7')
    assert cmd.prompt == 'say "cheese", style:baroque \\ done'
    assert cmd.options == {"seed": "7"}


def test_colons_inside_an_unquoted_prompt_are_text():
    cmd = parse_command("/sd prompt:a clock at 10:30 seed:1")
    assert cmd.prompt == "a clock at 10:30"
    assert cmd.options == {"seed": "1"}


def test_a_value_may_itself_hold_colons():
    assert parse_command("/fast model:26:3=0.7,12=0.3").options == {"model": "26:3=0.7,12=0.3"}
    assert parse_command("/sd prompt:style:baroque seed:2").prompt == "style:baroque"


def test_command_on_its_own_line():
    cmd = parse_command("/sd\nprompt:a fox\tstrength:0.4")
    assert (cmd.method, cmd.prompt, cmd.options) == ("sd", "a fox", {"strength": "0.4"})


def test_key_spellings_are_normalised():
    cmd = parse_command("/gatys Style-Weight:1e6 PRESERVE-COLOR:true")
    assert cmd.options == {"style_weight": "1e6", "preserve_color": "true"}


def test_text_without_slash_is_a_stylize():
    cmd = parse_command("method=fast style=candy")
    assert cmd == ParsedCommand(name="stylize", method="fast", options={"style": "candy"})


def test_command_given_apart_from_text_as_slack_does():
    cmd = parse_command("method:adain strength:0.3", command="/stylize")
    assert cmd.method == "adain" and cmd.options == {"strength": "0.3"}
    assert parse_command("a fox", command="sd").prompt == "a fox"


def test_method_as_first_bare_word():
    assert parse_command("/stylize adain strength:0.2").method == "adain"


def test_preset_blend_and_case():
    cmd = parse_command("/Stylize preset:\"night-sky\" blend:0.7,0.3 Method:ADAIN")
    assert cmd.preset == "night-sky"
    assert cmd.style_weights == [0.7, 0.3]
    assert cmd.method == "adain"


def test_empty_and_only_command():
    assert parse_command("/stylize") == ParsedCommand(name="stylize")
    assert parse_command("/hub").method == "hub"


@pytest.mark.parametrize("text, words", [
    ("/stylize strength:", "'strength' has no value"),
    ("/stylize strength: method:adain", "'strength' has no value"),
    ('/stylize prompt:""', "'prompt' has no value"),
    ("/stylize strength:1 strength:0.5", "'strength' is given twice"),
    ('/sd prompt:"a fox', "quote after 'prompt:' is never closed"),
    ('/sd "a fox', "quote is never closed"),
    ("/frobnicate", "Unknown command '/frobnicate'"),
    ("/", "Type a command after the '/'"),
    ("/sd method:adain", "'/sd' already picks the method sd"),
    ("/stylize method:adain strength:0.5 extra prompt:x", "I don't know what 'extra' means"),
    ("/stylize name:x", "'name:' belongs to /preset or /cancel"),
    ("/preset frob", "/preset takes one of"),
    ("/preset save method:adain", "/preset save needs a name"),
    ("/preset delete name:x strength:1", "/preset delete takes only a name"),
    ("/preset list extra:1", "/preset list takes nothing else"),
    ("/queue now", "/queue takes nothing"),
])
def test_malformed_commands_say_what_is_wrong(text, words):
    with pytest.raises(CommandError) as info:
        parse_command(text)
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, UserError)


def test_unknown_command_lists_the_real_ones():
    with pytest.raises(CommandError) as info:
        parse_command("/stylise-me")
    for name in ("/stylize", "/sd", "/hub", "/fast", "/preset", "/cancel"):
        assert name in str(info.value)


def test_bad_blend_is_an_option_error():
    with pytest.raises(OptionError, match="'blend' takes numbers"):
        parse_command("/adain blend:lots,some")


def test_preset_commands():
    save = parse_command("/preset save mine method:fast style:candy blend:1")
    assert (save.name, save.action, save.target, save.method) == ("preset", "save", "mine", "fast")
    assert save.options == {"style": "candy"} and save.style_weights == [1.0]
    assert parse_command("/preset delete name:mine") == ParsedCommand(
        name="preset", action="delete", target="mine")
    assert parse_command("/preset show mine").target == "mine"
    assert parse_command("/presets") == ParsedCommand(name="presets")
    assert parse_command("/preset") == ParsedCommand(name="presets")
    assert parse_command("/preset list") == ParsedCommand(name="presets")


def test_using_a_preset_is_a_stylize():
    cmd = parse_command("/preset use mine strength:0.3")
    assert cmd == ParsedCommand(name="stylize", preset="mine", options={"strength": "0.3"})


def test_other_commands():
    assert parse_command("/cancel 3fa2b1c0").target == "3fa2b1c0"
    assert parse_command("/cancel job:3fa2b1c0").target == "3fa2b1c0"
    assert parse_command("/cancel").target is None
    for name in ("queue", "methods", "help"):
        assert parse_command("/" + name) == ParsedCommand(name=name)


def test_stylize_help_is_help_everywhere():
    # docs/slack.md documents `/stylize help`; the page and chat read it the same way.
    for text in ("/stylize help", "/stylize ?", "/restyle HELP"):
        assert parse_command(text) == ParsedCommand(name="help")
    assert parse_command("help", command="stylize") == ParsedCommand(name="help")
    assert parse_command("/sd help").prompt == "help"  # a method's own command: a prompt


@pytest.mark.parametrize("text", [
    "/stylize method:adain strength:0.5",
    '/sd prompt:"a \\"quoted\\" fox, at 10:30" strength:0.6 seed:42',
    "/stylize preset:mine blend:0.7,0.3 size:128",
    "/preset save name:my-one method:fast style:rain_princess",
    "/preset delete name:old",
    "/cancel job:ab12",
    "/presets",
])
def test_to_text_round_trips(text):
    cmd = parse_command(text)
    assert parse_command(cmd.to_text()) == cmd


def test_quote_only_when_needed():
    assert quote("candy") == "candy"
    assert quote("a fox") == '"a fox"'
    assert quote('say "hi"') == '"say \\"hi\\""'
    assert quote("") == '""'


def test_build_request_carries_everything():
    content = ImageUpload(b"png-bytes", "photo.png")
    style = ImageUpload(b"style-bytes", "style.png")
    cmd = parse_command("/stylize method:adain strength:0.4 blend:1 preset:p")
    req = build_request(cmd, requester=ME, content=content, styles=[style])
    assert (req.method, req.options, req.preset, req.style_weights) == ("adain", {"strength": "0.4"}, "p", [1.0])
    assert req.content is content and req.styles == [style] and req.requester == ME


def test_build_request_needs_a_content_image():
    with pytest.raises(UserError, match="Attach the image to restyle"):
        build_request(parse_command("/hub"), requester=ME, content=None)


def test_build_request_refuses_other_commands():
    with pytest.raises(CommandError, match="does not restyle"):
        build_request(parse_command("/presets"), requester=ME, content=ImageUpload(b"x"))


@pytest.mark.parametrize("value, expected", [
    (None, False), ("", False), ("yes", True), ("Y", True), ("on", True), ("1", True),
    ("no", False), ("off", False), ("0", False), (True, True)])
def test_one_reading_of_yes_and_no_for_every_front_end(value, expected):
    assert parse_flag("replace", value) is expected


def test_a_flag_that_is_neither_yes_nor_no_is_refused():
    with pytest.raises(CommandError, match="'replace' takes yes or no, not 'maybe'"):
        parse_flag("replace", "maybe")


def test_a_prompt_of_only_blanks_is_no_prompt():
    """Found by the fuzzer: two empty quoted words made the prompt ' ', which read back as
    a prompt with no value."""
    parsed = parse_command('""""')
    assert parsed.prompt is None and parse_command(parsed.to_text()) == parsed
