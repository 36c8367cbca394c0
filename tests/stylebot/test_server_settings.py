"""Per-server and per-channel settings: the channel wins, defaults fill, limits bind."""

from __future__ import annotations

import dataclasses

import pytest

from engine.errors import UserError
from engine.events import Done
from engine.request import Place, Requester
from stylebot.server_settings import PlaceRules, parse_changes, show_lines
from stylebot.service import StyleService
from stylebot.settings import Settings
from tests.engine.conftest import toy_request

ADMIN = Requester("test", "admin")
HERE = Place("guild1", "chan1")
THERE = Place("guild1", "chan2")


@pytest.fixture
async def service(tmp_path, toy_methods):
    settings = Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False,
                        jobs_per_user=5)
    svc = await StyleService.open(settings)
    yield svc
    toy_methods.GATE.set()
    await svc.close(grace_s=1)


def placed(place, user="alice", method=None, **options):
    return dataclasses.replace(toy_request(user, method=method, **options), place=place)


def test_settings_parse_typed_values_and_refuse_wrong_ones():
    assert parse_changes({"method": "Hub", "size": "512", "methods": "hub, fast", "sd": "no",
                          "jobs_per_user": "2", "results": "ephemeral"}) == {
        "default_method": "hub", "default_size": 512, "allowed_methods": ["hub", "fast"],
        "allow_sd": False, "jobs_per_user": 2, "results": "ephemeral"}
    assert parse_changes({"method": "default", "methods": "all"}) == {
        "default_method": None, "allowed_methods": None}
    for given, message in [({"colour": "red"}, "no setting 'colour'"),
                           ({"method": "picasso"}, "Unknown method 'picasso'"),
                           ({"size": "9"}, "size: "), ({"jobs_per_user": "0"}, "whole number"),
                           ({"sd": "maybe"}, "yes or no"), ({"results": "loud"}, "public or ephemeral"),
                           ({}, "at least one setting")]:
        with pytest.raises(UserError, match=message):
            parse_changes(given)


def test_settings_default_size_fills_only_methods_with_a_size_and_only_when_not_given():
    rules = PlaceRules(default_method="hub", default_size=256)
    request = placed(HERE)
    assert rules.apply(request).method == "hub" and rules.apply(request).options == {"size": 256}
    assert rules.apply(placed(HERE, method="hub", size="300")).options == {"size": "300"}
    with pytest.raises(UserError, match="^Method 'gatys' is not allowed here; allowed: hub.$"):
        PlaceRules(allowed_methods=("hub",)).apply(placed(HERE, method="gatys"))
    with pytest.raises(UserError, match="turned sd off here"):
        PlaceRules(allow_sd=False).apply(placed(HERE, method="sd"))


async def test_settings_channel_overrides_server_and_default_method_applies(service):
    await service.change_place_settings(ADMIN, HERE, {"method": "toyfade", "results": "ephemeral"},
                                        whole_space=True)
    view = await service.change_place_settings(ADMIN, HERE, {"method": "toy"}, whole_space=False)
    assert view.rules.default_method == "toy" and view.rules.results == "ephemeral"
    lines = show_lines(view)
    assert lines[0] == "This server: method=toyfade results=ephemeral"
    assert lines[1] == "This channel (wins over the server's): method=toy"
    assert (await service.submit(placed(HERE))).method == "toy"
    other = await service.submit(placed(THERE))
    assert other.method == "toyfade" and not service.result_is_public(other.id)
    assert await service.place_rules(ADMIN, None) == PlaceRules()  # a CLI: no place, no rules
    outside = await service.submit(toy_request("alice", method="toy"))
    assert service.result_is_public(outside.id)


async def test_settings_allowed_methods_bind_presets_too(service):
    await service.change_place_settings(ADMIN, HERE, {"methods": "toy"}, whole_space=True)
    with pytest.raises(UserError, match="Method 'toystyle' is not allowed here; allowed: toy"):
        await service.submit(placed(HERE, method="toystyle"))
    await service.save_preset(Requester("test", "alice"), "p", "toyfade", {})
    request = placed(HERE)
    request.preset = "p"
    with pytest.raises(UserError, match="Method 'toyfade' is not allowed here"):
        await service.submit(request)
    assert isinstance(await (await service.submit(placed(HERE, method="toy"))).wait(), Done)


async def test_settings_per_user_job_limit_binds_in_that_server_only(service, toy_methods):
    toy_methods.GATE.clear()
    await service.change_place_settings(ADMIN, HERE, {"jobs_per_user": "1"}, whole_space=True)
    first = await service.submit(placed(HERE, method="toy", wait="true"))
    with pytest.raises(UserError, match=r"already have 1 job queued or running here \(this server's limit is 1\)"):
        await service.submit(placed(THERE, method="toy"))  # another channel of the same server
    await service.submit(placed(Place("guild2", "c"), method="toy"))  # another server: its own count
    await service.submit(placed(HERE, user="bob", method="toy"))  # another user
    toy_methods.GATE.set()
    await first.wait()
    await service.submit(placed(HERE, method="toy"))
