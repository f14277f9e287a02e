"""Does a message speak of new or usual places? Cue words, and names that merely contain "new".

These verify the model's choice of the novelty field (and let the rules set it); they do not
understand anything on their own.
"""

from __future__ import annotations

import re

# Cue words that must appear before a novelty / time field may act. These verify the model's enum
# choice against the message; they do not understand anything on their own.
NOVELTY_CUES = re.compile(
    r"\b(new|never|haven'?t|have not|not been|different|first time|unfamiliar|discover\w*|explore|"
    r"usual|familiar|regular|favou?rite|always|again|nuevo|nouveau|neu)\b",
    re.IGNORECASE,
)
# "new" inside a name is not "somewhere new": "I'm a New Yorker", "Happy New Year", "New Jersey"
# (lower case too, as people type), and any "New" + capitalised word ("New Haven", "New Balance").
NEW_IN_NAMES = re.compile(
    r"\bnew[\s-]+(?:york\w*|year\w*|jersey|orleans|england|zealand|delhi|mexico\w*|hampshire|haven|"
    r"brunswick|wave|age|balance|school)\b",
    re.IGNORECASE,
)
NEW_PROPER = re.compile(r"\bNew[\s-]+[A-Z][\w'-]*")


def without_names(message: str) -> str:
    """``message`` with names that contain "new" blanked (see NEW_IN_NAMES)."""
    return NEW_PROPER.sub(" ", NEW_IN_NAMES.sub(" ", message))


def novelty_cued(message: str) -> bool:
    """Does the message speak of new / usual places at all (not merely of New York)?"""
    return bool(NOVELTY_CUES.search(without_names(message)))
