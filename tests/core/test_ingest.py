"""Ingest: the three formats, cleaning, per-row reports, idempotence and atomic batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.errors import InvalidInputError, UnknownFormatError
from core.events_frame import events_frame, local_time
from core.ingest import parse_records
from core.ingest import writer as writer_mod
from core.models import Event, Item, User
from domains import formats


def parse_file(path: Path, fmt: str | None = None, zone: str | None = None) -> tuple:  # type: ignore[type-arg]
    p = formats().parse(path, fmt, zone)
    return p.events, p.rejections, p.rows_read, p.duplicates, p.format


def ingest_file(path: Path, factory: sessionmaker[Session], **kw: object):  # type: ignore[no-untyped-def]
    return writer_mod.ingest_file(path, factory, formats=formats(), **kw)  # type: ignore[arg-type]


FSQ_HEADER = "user_id,stan_poi_id,POI_id,POI_catid,POI_catname,latitude,longitude,UTC_time_minute,split\n"


def _count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture
def fsq_file(tmp_path: Path) -> Path:
    rows = [
        "470,635,,,,40.7198,-74.0025,2012-04-03 18:00,train",
        "979,975,4a43,4bf5,Bridge,40.6067,-74.0441,2012-04-03 18:00,train",
        "979,975,4a43,4bf5,Bridge,40.6067,-74.0441,2012-04-03 18:00,train",  # exact duplicate
        "979,976,,,,95.0,-74.0,2012-04-03 19:00,train",  # impossible latitude
        "979,977,,,,40.7,-74.0,2012-13-45 19:00,train",  # impossible time
        "979,978,,,,40.7,-74.0",  # too few fields
        ",979,,,,40.7,-74.0,2012-04-03 19:00,train",  # missing user
        "470,635,,,,40.7198,-74.0025,2012-11-05 18:00,train",  # after the DST switch
        "470,636,,,,0,0,2012-11-05 19:00,train",  # null island
    ]
    return _write(tmp_path, "checkins.csv", FSQ_HEADER + "\n".join(rows) + "\n")


def test_foursquare_rows_cleaned_and_reported(fsq_file: Path) -> None:
    df, rejections, n_read, duplicates, fmt = parse_file(fsq_file)
    assert fmt == "foursquare"
    assert n_read == 9
    assert len(df) == 3
    assert [d.line for d in duplicates] == [4] and "duplicate of line 3" in duplicates[0].reason
    reasons = {r.line: r.reason for r in rejections}
    assert set(reasons) == {5, 6, 7, 8, 10}
    assert "impossible coordinates" in reasons[5]
    assert "unparseable time" in reasons[6]
    assert "expected 9 fields" in reasons[7]
    assert "missing user_id" in reasons[8]
    assert "(0, 0)" in reasons[10]
    # New York local time: UTC-4 in April (EDT), UTC-5 after 2012-11-04 (EST)
    assert sorted(df[C.TZ_OFFSET].tolist()) == [-300, -240, -240]
    assert df.loc[df[C.CATEGORY].notna(), C.CATEGORY].tolist() == ["Bridge"]


def test_ingest_stores_good_rows_exactly_once(fsq_file: Path, session_factory: sessionmaker[Session]) -> None:
    first = ingest_file(fsq_file, session_factory)
    assert (first.inserted, first.already_present, first.rejected) == (3, 0, 5)
    assert (first.users_added, first.items_added) == (2, 2)
    again = ingest_file(fsq_file, session_factory)
    assert (again.inserted, again.already_present) == (0, 3)
    assert _count(session_factory, Event) == 3
    assert _count(session_factory, User) == 2
    with session_factory() as s:
        df = events_frame(s)
    assert df[C.TIME].dt.tz is not None
    lt = local_time(df[df[C.USER] == "979"])
    assert lt.iloc[0].hour == 14  # 18:00 UTC is 14:00 EDT


def test_getnext_format(tmp_path: Path, sqlite_session_factory: sessionmaker[Session]) -> None:
    header = (
        "user_id,POI_id,POI_catid,POI_catid_code,POI_catname,latitude,longitude,timezone,UTC_time,"
        "local_time,day_of_week,norm_in_day_time,trajectory_id,norm_day_shift,norm_relative_time,stan_poi_id\n"
    )
    rows = (
        "185,4fa5,4bf5,58,Bar,40.96,-74.06,-300,2012-11-09 21:54:47+00:00,2012-11-09 16:54:47+00:00,"
        "4,0.68,185_41,0,0.68,4908\n"
        "488,3fd6,4bf5,111,Diner,40.75,-73.99,-300,not-a-time,x,4,0.7,488_23,0,0.7,165\n"
    )
    p = _write(tmp_path, "val.csv", header + rows)
    report = ingest_file(p, sqlite_session_factory)
    assert report.format == "getnext" and report.inserted == 1
    assert [r.line for r in report.rejections] == [3]
    with sqlite_session_factory() as s:
        ev = s.scalars(select(Event)).one()
        assert ev.item_id == "4908" and ev.tz_offset_min == -300
        assert ev.attributes == {"venue_id": "4fa5", "trajectory_id": "185_41"}
        assert s.get(Item, "4908").category == "Bar"  # type: ignore[union-attr]


def test_generic_events_csv_and_jsonl(tmp_path: Path, sqlite_session_factory: sessionmaker[Session]) -> None:
    csv_text = (
        "user_id,item_id,timestamp,kind,lat,lon,text,rating,item_name,category,tz\n"
        "u1,i1,2024-05-01T08:15:00+02:00,view,48.85,2.35,,,Cafe de Flore,Cafe,\n"
        "u1,i2,2024-05-01T20:00:00,rating,,,Great food,4.5,Chez X,Restaurant,Europe/Paris\n"
        "u2,i1,1714550000,click,,,,,,,\n"
        "u2,,2024-05-01T08:00:00Z,checkin,,,,,,,\n"  # a check-in needs an item
        "u2,i3,2024-05-01T08:00:00Z,view,,,,,,,Mars/Olympus\n"
    )
    report = ingest_file(_write(tmp_path, "events.csv", csv_text), sqlite_session_factory)
    assert report.format == "events" and report.inserted == 3
    assert {r.line: r.reason for r in report.rejections} == {
        5: "missing item_id",
        6: "unknown time zone 'Mars/Olympus'",
    }
    with sqlite_session_factory() as s:
        df = events_frame(s).set_index(C.ITEM)
    u1 = df[df[C.USER] == "u1"]
    assert u1.loc["i1", C.TZ_OFFSET] == 120
    assert u1.loc["i2", C.TZ_OFFSET] == 120  # Paris summer time from the tz column
    assert u1.loc["i2", C.RATING] == 4.5 and u1.loc["i2", C.TEXT] == "Great food"

    jsonl = "\n".join(
        [
            json.dumps(
                {"user_id": "u3", "item_id": "i9", "timestamp": "2024-06-01T10:00:00Z", "kind": "purchase"}
            ),
            "{not json",
            json.dumps([1, 2]),
            json.dumps({"user_id": "u3", "timestamp": "yesterday", "item_id": "i9"}),
        ]
    )
    rep = ingest_file(_write(tmp_path, "ev.jsonl", jsonl), sqlite_session_factory)
    assert rep.inserted == 1
    assert [r.line for r in rep.rejections] == [2, 3, 4]


def test_parse_records_for_the_api() -> None:
    df, rejections, dups = parse_records(
        [
            {"user_id": "a", "item_id": "x", "timestamp": "2024-01-01T00:00:00Z"},
            {"user_id": "a", "item_id": "x", "timestamp": "2024-01-01T00:00:00Z"},
            {"item_id": "x", "timestamp": "2024-01-01T00:00:00Z"},
            "junk",  # type: ignore[list-item]
        ]
    )
    assert len(df) == 1 and len(dups) == 1
    assert {r.line for r in rejections} == {3, 4}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
        (b"user,thing,when\n1,2,3\n", "cannot tell the format"),
        (b"caf\xe9,1\n", "not UTF-8"),
    ],
)
def test_unreadable_files_give_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message):
        parse_file(p)


def test_wrong_columns_for_a_forced_format(fsq_file: Path) -> None:
    with pytest.raises(InvalidInputError, match="needs columns"):
        parse_file(fsq_file, fmt="getnext")
    with pytest.raises(InvalidInputError, match="unknown format"):
        parse_file(fsq_file, fmt="parquet")
    assert issubclass(UnknownFormatError, InvalidInputError)


def test_huge_line_is_rejected_not_fatal(
    tmp_path: Path, sqlite_session_factory: sessionmaker[Session]
) -> None:
    huge = "x" * 5_000_000
    text = (
        FSQ_HEADER
        + f"1,2,,,{huge},40.7,-74.0,2012-04-03 18:00,train\n"
        + "1,3,,,,40.7,-74.0,2012-04-03 18:05,train\n"
    )
    report = ingest_file(_write(tmp_path, "huge.csv", text), sqlite_session_factory)
    assert report.inserted == 1
    assert report.rejections[0].line == 2 and "characters long" in report.rejections[0].reason


def test_crash_mid_ingest_leaves_whole_batches_only(
    tmp_path: Path, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        f"{u},{100 + i},,,,40.7,-74.0,2012-04-{3 + i % 20:02d} 18:{i % 60:02d},train"
        for i, u in enumerate(range(25))
    ]
    p = _write(tmp_path, "c.csv", FSQ_HEADER + "\n".join(rows) + "\n")
    real = writer_mod._write_batch
    calls = {"n": 0}

    def crashing(session: Session, df, source):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        out = real(session, df, source)  # the batch's rows are written inside its transaction...
        if calls["n"] == 2:
            raise RuntimeError("power cut")  # ...and the crash must roll all of them back
        return out

    monkeypatch.setattr(writer_mod, "_write_batch", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest_file(p, session_factory, batch_rows=10)
    assert _count(session_factory, Event) == 10
    assert _count(session_factory, User) == 10  # batch 2's users were rolled back with it
    monkeypatch.setattr(writer_mod, "_write_batch", real)
    report = ingest_file(p, session_factory, batch_rows=10)
    assert (report.inserted, report.already_present) == (15, 10)
    assert _count(session_factory, Event) == 25


def test_later_file_fills_missing_category(
    tmp_path: Path, sqlite_session_factory: sessionmaker[Session]
) -> None:
    a = _write(tmp_path, "a.csv", FSQ_HEADER + "1,7,,,,40.7,-74.0,2012-04-03 18:00,train\n")
    b = _write(tmp_path, "b.csv", FSQ_HEADER + "2,7,v,c,Museum,40.7,-74.0,2012-04-04 18:00,train\n")
    ingest_file(a, sqlite_session_factory)
    ingest_file(b, sqlite_session_factory)
    with sqlite_session_factory() as s:
        assert s.get(Item, "7").category == "Museum"  # type: ignore[union-attr]


def test_all_rows_rejected_gives_an_empty_frame() -> None:
    """Found by schemathesis: a batch whose every event is rejected must not crash."""
    df, rejections, dups = parse_records(
        [{"user_id": "0", "timestamp": "0"}, {"user_id": "a", "timestamp": True}]
    )
    assert df.empty and len(rejections) == 2 and dups == []


def test_a_zone_the_coordinates_contradict_is_reported(tmp_path: Path, fsq_file: Path) -> None:
    """Foursquare times are UTC; the default zone (New York) applied to Tokyo coordinates is a
    warning that names the zone, the offset the coordinates suggest and how to set the zone."""
    tokyo = _write(
        tmp_path,
        "tokyo.csv",
        FSQ_HEADER
        + "1,10,,,,35.68,139.76,2012-04-03 18:00,train\n2,11,,,,35.69,139.70,2012-04-03 19:00,train\n",
    )
    (warning,) = formats().parse(tokyo).warnings
    assert "America/New_York (UTC-04:00 at these times)" in warning
    assert "suggest about UTC+09:00 (median longitude 139.7°)" in warning
    assert "--zone" in warning and "CHRONOTOPE_LOCAL_TIMEZONE" in warning and "Etc/GMT-9" in warning
    assert formats().parse(tokyo, zone="Asia/Tokyo").warnings == []
    assert formats().parse(fsq_file).warnings == []  # New York check-ins in New York's zone


def test_events_without_a_zone_put_the_store_on_utc(tmp_path: Path) -> None:
    """A generic events file whose times give no zone records the UTC clock (profiles then say
    "UTC", not "local time"); one with zones records local time; a mix is a warning."""
    head = "user_id,item_id,timestamp\n"
    naive = _write(tmp_path, "naive.csv", head + "u,a,2024-05-01T08:15:00\nu,b,2024-05-01T09:00:00Z\n")
    zoned = _write(
        tmp_path, "zoned.csv", head + "u,a,2024-05-01T08:15:00+02:00\nu,b,2024-05-01T09:00:00+00:00\n"
    )
    mixed = _write(tmp_path, "mixed.csv", head + "u,a,2024-05-01T08:15:00+02:00\nu,b,1714550400\n")
    with_tz = _write(
        tmp_path,
        "tz.jsonl",
        '{"user_id": "u", "item_id": "a", "timestamp": "2024-05-01T08:15:00", "tz": "Europe/Paris"}\n',
    )
    assert formats().parse(naive).meta["clock"] == "UTC" and formats().parse(naive).warnings == []
    assert formats().parse(zoned).meta["clock"] == "local" and formats().parse(zoned).warnings == []
    assert formats().parse(with_tz).meta["clock"] == "local"
    m = formats().parse(mixed)
    assert m.meta["clock"] == "local" and m.warnings and "1 of 2 rows give no time zone" in m.warnings[0]
