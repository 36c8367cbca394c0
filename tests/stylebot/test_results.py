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
