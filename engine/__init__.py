"""Platform-neutral style-transfer engine: requests in, events out.

Nothing here knows about Discord, Slack or SQL. Heavy libraries (torch, diffusers)
are imported lazily inside the methods so that importing this package stays cheap.
"""
