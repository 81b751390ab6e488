"""A seeded simulation of a support operation: customers arriving over the day with repeat and
new questions, the real engine answering them, agents working the queue with realistic reply
times, ratings. It fills the demo's database with weeks to look at (`crowddesk demo
--simulate-weeks 2`) and drives the service-day benchmark.

May import `bot/project/`, `bot/conversations/`, `bot/desk/`, `bot/dialogue/` and the layers
below `bot/`.
"""

# The longest simulation the demo plays: eight weeks take a quarter of an hour on two cores.
MAX_WEEKS = 8
