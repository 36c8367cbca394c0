"""The model cache keeps models loaded and unloads the least recently used under budget."""

import torch

from engine.models import ModelCache, model_nbytes


def linear(n: int) -> torch.nn.Module:
    return torch.nn.Linear(n, n, bias=False)  # n*n*4 bytes


def test_hit_does_not_reload():
    cache = ModelCache(10_000_000)
    a = cache.get("a", lambda: linear(8))
    assert cache.get("a", lambda: linear(8)) is a and cache.loads == 1


def test_least_recently_used_is_unloaded_over_budget():
    cache = ModelCache(3 * 100 * 100 * 4)  # room for three 100x100 layers
    for key in "abc":
        cache.get(key, lambda: linear(100))
    cache.get("a", lambda: linear(100))  # touch a: b is now the oldest
    cache.get("d", lambda: linear(100))
    assert cache.keys() == ["c", "a", "d"]
    assert cache.used_bytes == 3 * 100 * 100 * 4


def test_a_model_bigger_than_the_budget_still_loads_alone():
    cache = ModelCache(10)
    cache.get("small", lambda: linear(2))
    cache.get("big", lambda: linear(50))
    assert cache.keys() == ["big"]


def test_nbytes_of_containers():
    assert model_nbytes({"enc": linear(10), "dec": [linear(10)]}) == 2 * 400
