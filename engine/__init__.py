"""Platform-neutral style-transfer engine: requests in, events out.

Nothing here knows about Discord, Slack, SQL or HTTP, and its settings
(``engine.settings.EngineSettings``) hold none of theirs. Heavy libraries (torch,
diffusers) are imported lazily inside the methods so that importing this package stays cheap.
"""
