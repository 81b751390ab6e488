"""What every HTTP route of CrowdDesk shares: request body limits, bounds on query values, how a
refusal is answered (status code and body), how a route gets the services it works with, and
serving a web console's page and files from `bot/static/`.

A leaf of `bot/`: imports nothing of CrowdDesk but `crowddesk.errors`.
"""
