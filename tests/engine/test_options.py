"""Declared options: parsing chat strings, ranges, unknown names, messages."""

import pytest

from engine.errors import OptionError
from engine.options import SEED, STRENGTH, Option, OptionSet

OPTS = OptionSet([
    STRENGTH,
    Option("iterations", "int", 100, "steps", min=1, max=3000),
    Option("style_weight", "float", 1e6, "style", min=1e2, max=1e10, log_scale=True),
    Option("optimizer", "choice", "lbfgs", "which", choices=("lbfgs", "adam")),
    Option("preserve_color", "bool", False, "colour"),
    SEED,
])


def test_defaults_fill_in_and_strings_are_converted():
    got = OPTS.validate({"strength": "0.25", "iterations": "20", "preserve-color": "yes",
                         "Optimizer": "ADAM", "style_weight": "1e7"}, method="gatys")
    assert got == {"strength": 0.25, "iterations": 20, "style_weight": 1e7, "optimizer": "adam",
                   "preserve_color": True, "seed": None}


@pytest.mark.parametrize("raw, message", [
    ({"strength": 1.5}, "Option 'strength' is 1.5, outside its allowed range 0..1."),
    ({"iterations": "2.5"}, "Option 'iterations' must be a whole number, got '2.5' (allowed: 1..3000)."),
    ({"iterations": 0}, "Option 'iterations' is 0, outside its allowed range 1..3000."),
    ({"style_weight": "lots"}, "Option 'style_weight' must be a number, got 'lots' (allowed: 100..1e+10)."),
    ({"style_weight": "nan"}, "Option 'style_weight' must be a number"),
    ({"optimizer": "sgd"}, "Option 'optimizer' must be one of the listed choices, got 'sgd' (allowed: one of lbfgs, adam)."),
    ({"preserve_color": "maybe"}, "Option 'preserve_color' must be true or false"),
    ({"seed": -1}, "Option 'seed' is -1, outside its allowed range 0..4294967295."),
])
def test_bad_values_name_the_option_and_its_range(raw, message):
    with pytest.raises(OptionError) as info:
        OPTS.validate(raw, method="gatys")
    assert str(info.value).startswith(message)


def test_unknown_options_list_the_valid_ones():
    with pytest.raises(OptionError, match=r"Method 'gatys' has no options 'alpha', 'prompt'; its options are: "
                                          r"strength, iterations, style_weight, optimizer, preserve_color, seed\."):
        OPTS.validate({"alpha": 1, "prompt": "x"}, method="gatys")


def test_flags_and_descriptions_for_front_ends():
    assert OPTS["preserve_color"].flag == "--preserve-color"
    described = OPTS["style_weight"].to_dict()
    assert described["log_scale"] and described["min"] == 1e2 and described["type"] == "float"
    assert described["range"] == "100..1e+10"


def test_booleans_are_not_numbers():
    with pytest.raises(OptionError):
        OPTS.validate({"iterations": True}, method="gatys")


# --- aliases: one option, several names ------------------------------------------------

from dataclasses import replace  # noqa: E402

from engine.options import Alias  # noqa: E402

ALIASED = OptionSet([
    replace(STRENGTH, aliases=("alpha",)),
    Option("style_weight", "float", 1e6, "style", min=1e2, max=1e10, log_scale=True,
           aliases=(Alias("level", Option("level", "float", 0.5, "slider", min=0.0, max=1.0),
                          lambda s: 10 ** (2 + 8 * s)),)),
])


def test_an_alias_sets_its_option_under_the_declared_name():
    assert ALIASED.validate({"Alpha": "0.25"}, method="m") == {"strength": 0.25, "style_weight": 1e6}
    assert ALIASED.normalise_names({"alpha": "0.25", "level": 0.375}) == {"strength": "0.25",
                                                                          "style_weight": 1e5}
    assert ALIASED.validate({"level": 0.5}, method="m")["style_weight"] == 1e6
    assert ALIASED.target("alpha") is ALIASED["strength"]
    assert ALIASED.target("level") is ALIASED["style_weight"]
    assert ALIASED.reader("level").describe_range() == "0..1"


@pytest.mark.parametrize("raw, message", [
    ({"strength": 1, "alpha": 1}, "'strength' and 'alpha' are two names for the same option; give only one."),
    ({"style_weight": 1e5, "level": 0.5}, "'style_weight' and 'level' are two names for the same option"),
    ({"alpha": 2}, "Option 'alpha' is 2, outside its allowed range 0..1."),
    ({"level": 2}, "Option 'level' is 2, outside its allowed range 0..1."),
    ({"beta": 2}, "Method 'm' has no option 'beta'; its options are: strength, style_weight."),
])
def test_alias_mistakes_are_one_line_naming_what_was_typed(raw, message):
    with pytest.raises(OptionError) as info:
        ALIASED.validate(raw, method="m")
    assert str(info.value).startswith(message)


def test_a_name_declared_twice_is_a_bug():
    with pytest.raises(ValueError, match="'alpha' is declared twice"):
        OptionSet([replace(STRENGTH, aliases=("alpha",)), Option("alpha", "float", 1.0, "x")])


def test_aliases_are_described_for_front_ends():
    assert ALIASED["strength"].to_dict()["aliases"] == [
        {"name": "alpha", "range": "0..1", "help": "Another name for strength."}]
    assert ALIASED["style_weight"].to_dict()["aliases"][0]["range"] == "0..1"
