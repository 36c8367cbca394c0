"""The application layer, the only door front ends use: the service (submit, checks, the
chat rate limit, presets, result buttons), the shared command parser, settings, the CLI and
`stylebot run`. Front ends plug in through ``frontends``; nothing here imports ``bot/``."""
