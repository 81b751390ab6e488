"""`crowddesk evaluate nlu | kb | conversations`: evaluation data, metrics, the open-set
(unseen topics) protocol and the HTML report.

Runs the assembled bot, so it may import `bot/server/` and every room below it.
"""
