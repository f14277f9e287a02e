"""One conversion from a request's time to the person's clock, on every path that reads it:
ranking (retrieval.query.local_clock), explanations (agent.explanations.local_moment and the
template's "now") and the chat ("tonight", "this evening": agent.chat.state.when_time). The same
instant written with an offset, in UTC and naive (taken as UTC) gives the same local time; the
person's offset is applied once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from agent.chat.state import when_time
from agent.explanations import Situation, local_moment
from core.clock import as_instant, local_time
from retrieval.query import local_clock
from retrieval.types import RequestContext

# 2013-02-20 03:30 UTC (a Wednesday), written three ways
SAME_INSTANT = {
    "offset": datetime(2013, 2, 20, 12, 30, tzinfo=timezone(timedelta(hours=9))),
    "new_york_offset": datetime(2013, 2, 19, 22, 30, tzinfo=timezone(timedelta(hours=-5))),
    "utc": datetime(2013, 2, 20, 3, 30, tzinfo=UTC),
    "naive": datetime(2013, 2, 20, 3, 30),
}
# the person's offset -> their wall clock at that instant
PEOPLE = {
    -300: datetime(2013, 2, 19, 22, 30),
    540: datetime(2013, 2, 20, 12, 30),
    0: datetime(2013, 2, 20, 3, 30),
}


@pytest.mark.parametrize("written", SAME_INSTANT)
@pytest.mark.parametrize("offset", PEOPLE)
def test_ranking_reads_the_persons_clock(written: str, offset: int) -> None:
    hour, weekend, weekday = local_clock(pd.Timestamp(as_instant(SAME_INSTANT[written])), offset)
    want = PEOPLE[offset]
    assert hour == pytest.approx(want.hour + want.minute / 60)
    assert weekday == want.weekday() and weekend is False


@pytest.mark.parametrize("written", SAME_INSTANT)
@pytest.mark.parametrize("offset", PEOPLE)
def test_explanations_read_the_persons_clock(written: str, offset: int) -> None:
    ctx = RequestContext(time=SAME_INSTANT[written])
    moment = local_moment(ctx, offset, None, None)
    assert moment.local == PEOPLE[offset]
    parts = Situation(moment).now_parts()
    # 22:30 is the evening/night for the New Yorker, 12:30 midday in Tokyo: never both
    if offset == -300:
        assert "midday" not in " ".join(parts) and "lunch" not in " ".join(parts)
    if offset == 540:
        assert not {"night", "late night", "evening"} & set(parts)


@pytest.mark.parametrize("written", SAME_INSTANT)
def test_explanations_without_a_person_use_utc_not_the_callers_zone(written: str) -> None:
    assert Situation.plain(RequestContext(time=SAME_INSTANT[written])).moment.local == PEOPLE[0]


@pytest.mark.parametrize("written", SAME_INSTANT)
@pytest.mark.parametrize("offset", [-300, 540])
def test_the_chat_names_times_on_the_persons_clock(written: str, offset: int) -> None:
    now = as_instant(SAME_INSTANT[written])
    evening = local_time(when_time(now, "evening", offset), offset)
    morning = local_time(when_time(now, "morning", offset), offset)
    here = PEOPLE[offset]
    # "this evening" said at 22:30 (New York) is tomorrow's; said at 12:30 (Tokyo) it is today's
    assert evening.hour == 19 and evening.date() == here.date() + timedelta(days=1 if offset == -300 else 0)
    # "this morning" is past at both: tomorrow's
    assert morning.hour == 9 and morning.date() == here.date() + timedelta(days=1)
    assert when_time(now, "now", offset) == now
