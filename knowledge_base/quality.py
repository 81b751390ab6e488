"""Community quality signals as a ranking prior: accepted and well-voted answers first.

The prior is added to the retriever's blended score. It is small (at most
ACCEPTED_BONUS + VOTES_BONUS = 0.03) so it only reorders candidates that the query matches
about equally well; it never lifts a poor match over a good one.
"""

from __future__ import annotations

import math

from crowddesk.knowledge_base.types import KBEntry

ACCEPTED_BONUS = 0.02
VOTES_BONUS = 0.01
# Votes beyond this add nothing more: 100 votes and 10,000 votes are both "the community agrees".
VOTES_SATURATION = 100


def quality_prior(entry: KBEntry) -> float:
    """0 for an entry without community signals, up to 0.03 for an accepted, much-voted answer."""
    votes = min(max(entry.votes, 0), VOTES_SATURATION)
    return ACCEPTED_BONUS * entry.accepted + VOTES_BONUS * math.log1p(votes) / math.log1p(VOTES_SATURATION)
