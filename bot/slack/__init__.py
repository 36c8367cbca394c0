"""The Slack front end: slash commands, a shortcut and mentions in, Stylebot jobs out.

``app`` runs the Bolt app (Socket Mode or HTTP), ``commands`` holds the listeners,
``inputs`` finds and fetches shared images, ``flow`` follows a job to its result,
``render`` writes the texts and Block Kit, ``ui`` holds the modals and buttons.
"""
