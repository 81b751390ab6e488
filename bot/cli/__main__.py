"""`python -m crowddesk.bot.cli`: the `crowddesk` command."""

import sys

from crowddesk.bot.cli.main import main

sys.exit(main())
