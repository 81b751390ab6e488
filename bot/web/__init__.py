"""What every HTTP route of CrowdDesk shares: request body limits, bounds on query values, and
serving a web console's page and files from `bot/static/`.

A leaf of `bot/`: imports nothing of CrowdDesk.
"""
