"""The local web playground: a page and its API over StyleService, served by `stylebot run`."""

from .server import REQUESTER, Playground, add_playground, json_errors

__all__ = ["REQUESTER", "Playground", "add_playground", "json_errors"]
