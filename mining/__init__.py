"""Mining: pure functions from a DataFrame of events (core.columns) to a UserProfile.

No database or HTTP imports here: the CLI and services do the I/O."""

from mining.facts import MINER_VERSION, Fact, UserProfile
from mining.profile import build_profile
from mining.transitions import GlobalStats, global_stats

__all__ = ["MINER_VERSION", "Fact", "GlobalStats", "UserProfile", "build_profile", "global_stats"]
