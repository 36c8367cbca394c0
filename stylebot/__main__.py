import sys

from stylebot.cli import main

sys.exit(main())
