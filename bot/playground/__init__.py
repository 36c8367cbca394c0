"""The local web playground: a page and its API over StyleService, served by `stylebot run`."""

from .app import REQUESTER, Playground, add_playground, json_errors, same_origin_guard

__all__ = ["REQUESTER", "Playground", "add_playground", "json_errors", "same_origin_guard"]
