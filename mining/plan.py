"""What mining runs for one domain: its miners in order, the sentences its profile text adds, its words.

A miner reads one person's events (``UserEvents``) and the shared ``MiningContext`` and returns
facts; a miner may also annotate the context for the ones after it (the places domain's spatial
miner names each event's area, which the time-slot habits then use). The domain-neutral miners
live in this package; a domain package adds its own (``domains/places``: areas and anchors;
``domains/films``: how they rate, the aspects in their tags).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.nouns import ITEMS, Nouns
from mining.facts import Fact
from mining.frame import UserEvents
from mining.transitions import GlobalStats


@dataclass
class MiningContext:
    global_stats: GlobalStats | None = None
    nouns: Nouns = ITEMS
    # per event, the area it happened in (set by a domain's spatial miner; None: no areas)
    areas: np.ndarray | None = None
    sessions: bool = False  # rhythm counts sittings, not events (people rate films in bursts)
    clock: str = "local time"  # "UTC" where the data carried no time zone


Miner = Callable[[UserEvents, MiningContext], list[Fact]]
# (facts by id) -> a sentence and the ids behind it, or None; a domain's additions to the text
Sentence = Callable[[dict[str, Fact]], tuple[str, list[str]] | None]


@dataclass(frozen=True)
class MiningPlan:
    miners: Sequence[Miner]
    sentences: Sequence[Sentence] = field(default=())  # placed after the rhythm sentence
    nouns: Nouns = ITEMS
    sessions: bool = False
    clock: str = "local time"

    def context(self, global_stats: GlobalStats | None) -> MiningContext:
        return MiningContext(global_stats, self.nouns, None, self.sessions, self.clock)
