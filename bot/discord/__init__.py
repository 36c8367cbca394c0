"""The Discord front end: slash commands and buttons in, Stylebot jobs out.

``app`` connects and runs, ``commands`` declares the slash and message commands,
``inputs`` turns attachments into uploads, ``flow`` follows a job to its result,
``reply`` edits the interaction's message, ``render`` writes the texts and embeds,
``ui`` holds the buttons, menus and forms under them.
"""
