"""Front ends: the chat adapters and the local web playground. Each translates platform
events into one ``StyleRequest`` for ``stylebot.service.StyleService`` and job events into
messages; none holds ML, SQL or a rule that should hold on every platform."""
