"""The chat's parts on their own: the reply guard and its streaming hold-back, the verification of
the model's form against the user's words, the rules fallback, how intents change the state, and
what a named time means."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.chat.guard import GuardedStream, ReplyRules, Violation, check_reply
from agent.chat.intent import TurnIntent, said
from agent.chat.intent import intent_json_schema as _schema
from agent.chat.intent import verify as _verify
from agent.chat.rules import rules_intent as _rules_intent
from agent.chat.state import ChatState, ShownItem, when_time
from agent.chat.state import apply as _apply
from agent.chat.state import to_context as _to_context
from agent.chat.tools import TOOLS
from domains.places import PLACES
from domains.places.chat import DISTANCE
from retrieval.embedder import HashEmbedder
from retrieval.grounding import CategoryGrounder

ARGS = (DISTANCE,)  # the places domain's chat argument


def intent_json_schema(message=None, n_shown=9, state=None):  # type: ignore[no-untyped-def]
    return _schema(message, n_shown, state, TOOLS.names, ARGS)


def verify(intent, message, earlier, n_shown, state):  # type: ignore[no-untyped-def]
    return _verify(intent, message, earlier, n_shown, state, ARGS)


def rules_intent(message):  # type: ignore[no-untyped-def]
    return _rules_intent(message, TOOLS, ARGS)


def apply(state, intent, grounder):  # type: ignore[no-untyped-def]
    return _apply(state, intent, grounder, ARGS)


def to_context(state, now, lat=None, lon=None):  # type: ignore[no-untyped-def]
    args = {"lat": lat, "lon": lon} if lat is not None else {}
    return _to_context(state, now, args, 0, PLACES)


CATALOG = [
    "Coffee Shop",
    "Café",
    "Bar",
    "Museum",
    "Art Museum",
    "Park",
    "Italian Restaurant",
    "Thai Restaurant",
]


def _rules(**kw: object) -> ReplyRules:
    args: dict = {
        "tool_text": "Places found, best first:\n1. Park: 0.8 km away, you have been here 3 times.\n"
        "2. Museum: new to you.",
        "message": "somewhere outside, no coffee",
        "n_items": 2,
        "shown_categories": {"Park", "Museum"},
        "excluded_categories": {"Coffee Shop"},
        "catalog_categories": CATALOG,
        "instructions": "Mention places only as they appear in the results, by number and kind.",
    }
    args.update(kw)
    return ReplyRules(**args)


@pytest.mark.parametrize(
    "text",
    [
        "Try 1. Park: it is 0.8 km away and you have been there 3 times.",
        "How about 2. Museum? It is new to you.",
        "On Saturday, 1. Park is a good bet.",
        "1. Park fits: 0.8 km away. Then 2. Museum, new to you.",
    ],
)
def test_faithful_replies_pass(text: str) -> None:
    assert check_reply(text, _rules()) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Go to the Bar instead.", "not among the results: Bar"),
        ("A Coffee Shop nearby would do.", "excluded kind of place: Coffee Shop"),
        ("1. Park is 5 km away.", "a number not in the results: 5"),
        ("Try 3. Park.", "refers to result 3, but there are 2"),
        ("You will love it at Joe's Diner by 1. Park.", "not among the results: Joe"),
        ("I will mention places only as they appear in the results.", "repeats its instructions"),
        ("", "empty reply"),
    ],
)
def test_unfaithful_replies_are_caught(text: str, problem: str) -> None:
    problems = check_reply(text, _rules())
    assert any(problem.rstrip(".") in p for p in problems), problems


def test_a_clock_time_before_a_sentence_is_not_a_result_number() -> None:
    rules = _rules(
        tool_text="Places found:\n1. Park: you are most active around 12:00.\n2. Museum: new to you."
    )
    assert check_reply("You are usually out around 12:00. Try 1. Park.", rules) == []


def test_the_stream_releases_only_checked_text() -> None:
    g = GuardedStream(_rules(), hold=20)
    released = ""
    for piece in "Try 1. Park: it is 0.8 km away, a short walk for you on a sunny day".split(" "):
        released += g.feed(piece + " ")
    assert released and len(g.text) - len(released) >= 20 - len("sunny ")  # some text is held back
    released += g.finish()
    assert released == g.text
    g2 = GuardedStream(_rules(), hold=20)
    shown = ""
    with pytest.raises(Violation) as exc:
        for piece in "Try 1. Park: it is 0.8 km away, and then the Bar next door".split(" "):
            shown += g2.feed(piece + " ")
    assert "Bar" not in shown and exc.value.released == shown


def test_the_stream_holds_only_words_that_could_still_become_a_violation() -> None:
    g = GuardedStream(_rules())
    shown = g.feed("Try 1. Park is lovely, ")
    assert shown == "Try 1. Park is lovely,"  # nothing in it can still grow: released at once
    shown += g.feed("or a Coffee ")
    assert shown.endswith("or a ")  # "Coffee" may still become the excluded "Coffee Shop"
    with pytest.raises(Violation) as exc:
        g.feed("Shop nearby")
    assert "excluded kind of place: Coffee Shop" in str(exc.value)
    assert "Coffee" not in exc.value.released
    g2 = GuardedStream(_rules())
    assert g2.feed("The Thai ") == "The "  # "Thai Restaurant" is a category; "Thai" alone is not
    assert g2.feed("food there ") == "Thai food there"
    g3 = GuardedStream(_rules())
    g3.feed("Sure! I will mention places only as ")
    assert "mention places" not in g3.text[: g3.released]  # could be the start of an echo
    with pytest.raises(Violation):
        g3.feed("they appear in the results.")


def test_the_intent_schema_is_closed_and_short() -> None:
    schema = intent_json_schema()
    assert schema["additionalProperties"] is False and schema["required"] == ["action"]
    assert schema["properties"]["wish"]["maxLength"] == 60
    assert schema["properties"]["avoid"]["items"]["maxLength"] == 40
    assert set(schema["properties"]["action"]["enum"]) == {
        "recommend",
        "explain",
        "reject",
        "undo",
        "profile",
        "chat",
    }


def test_the_schema_offers_only_fields_the_message_can_fill() -> None:
    bare = intent_json_schema("somewhere to watch the sunset", 0, ChatState())
    assert set(bare["properties"]) == {"action", "wish", "kinds", "when"}
    assert bare["properties"]["when"]["enum"] == ["evening"]
    assert "explain" not in bare["properties"]["action"]["enum"]  # nothing shown yet
    later = intent_json_schema(
        "not the second one, and closer, somewhere new", 2, ChatState(wish="tacos", avoid=["pizza"])
    )
    assert {"item", "avoid", "forget", "distance", "new_places"} <= set(later["properties"])
    assert later["properties"]["item"]["maximum"] == 2 and "when" not in later["properties"]
    assert set(later["properties"]["action"]["enum"]) == {"recommend", "explain", "reject", "profile", "chat"}
    assert intent_json_schema("pizza is off the table", 0, None)["properties"]["avoid"]


def test_said_matches_words_stems_and_compounds() -> None:
    assert said("workout", "somewhere to work out after the office")
    assert said("museums", "I'd like a museum")
    assert not said("pizza", "dumplings please")
    assert not said("the a of", "the a of")  # filler only: nothing said


def test_verify_keeps_what_the_user_said_and_drops_inventions() -> None:
    state = ChatState(wish="tacos", shown=[ShownItem("1", "Taco Place"), ShownItem("2", "Bar")])
    intent = TurnIntent(
        action="recommend",
        wish="dumplings",
        kinds=["chinese restaurant"],
        avoid=["pizza", "steak"],
        forget=["tacos"],
        args={"distance": "near"},
        new_places="yes",
        when="night",
        item=5,
    )
    v = verify(intent, "forget the tacos, I'm craving dumplings", "", 2, state)
    out = v.intent
    assert out.wish == "dumplings" and out.kinds == ["chinese restaurant"] and out.forget == ["tacos"]
    assert out.avoid == [] and out.args == {} and out.new_places == "same" and out.when == "now"
    assert out.item == 0 and len(v.dropped) == 6
    # a wish the user never wrote (copied from the profile or an example) is replaced by the message
    v2 = verify(
        TurnIntent(action="recommend", wish="sushi", kinds=["sushi bar"]), "hungry!", "", 0, ChatState()
    )
    assert v2.intent.wish == "hungry!" and v2.dropped
    # explain or reject with nothing shown is not possible
    assert verify(TurnIntent(action="reject"), "no", "", 0, ChatState()).intent.action == "chat"


@pytest.mark.parametrize(
    ("message", "action", "item"),
    [
        ("why the second one?", "explain", 2),
        ("not that one", "reject", 0),
        ("what do you know about me", "profile", 0),
        ("thanks!", "chat", 0),
        ("a quiet café, no bars, somewhere new", "recommend", 0),
    ],
)
def test_rules_fallback(message: str, action: str, item: int) -> None:
    i = rules_intent(message)
    assert (i.action, i.item) == (action, item)
    if action == "recommend":
        assert i.avoid == ["bars"] and i.new_places == "yes" and "café" in i.wish and "bars" not in i.wish


def test_rules_keep_the_earlier_wish_for_a_bare_refinement() -> None:
    i = rules_intent("even closer")
    assert i.wish == "" and i.args == {"distance": "closer"}


@pytest.fixture(scope="module")
def grounder() -> CategoryGrounder:
    return CategoryGrounder(CATALOG, HashEmbedder(128))


def test_apply_accumulates_and_revises(grounder: CategoryGrounder) -> None:
    s1 = apply(ChatState(), TurnIntent(action="recommend", wish="museum", avoid=["coffee"]), grounder)
    assert s1.include_kinds[0] == "Museum" and s1.exclude_kinds == ["Coffee Shop"]
    s2 = apply(s1, TurnIntent(action="recommend", args={"distance": "closer"}), grounder)
    assert s2.wish == "museum" and s2.args["max_distance_km"] == 2.0 and s2.exclude_kinds == ["Coffee Shop"]
    s3 = apply(s2, TurnIntent(action="recommend", args={"distance": "closer"}), grounder)
    assert s3.args["max_distance_km"] == 1.0
    s4 = apply(s3, TurnIntent(action="recommend", forget=["museum", "coffee"], wish="park"), grounder)
    assert s4.wish == "park" and s4.include_kinds == ["Park"] and s4.avoid == [] and s4.exclude_kinds == []
    # an exclusion removes the kind from the wish too ("no Italian, something else")
    s5 = apply(
        ChatState(), TurnIntent(action="recommend", kinds=["italian restaurant"], avoid=["italian"]), grounder
    )
    assert "Italian Restaurant" in s5.exclude_kinds and "Italian Restaurant" not in s5.include_kinds
    assert s1.avoid == ["coffee"] and "max_distance_km" not in s1.args  # apply never mutates its input


def test_state_round_trips_and_builds_the_request() -> None:
    s = ChatState(
        wish="park",
        wish_categories=[{"category": "Park", "similarity": 0.9, "via": "wish"}],
        avoid=["coffee"],
        avoid_categories=[{"category": "Coffee Shop", "similarity": 0.7, "via": "word:coffee"}],
        args={"max_distance_km": 2.0},
        new_only=True,
        rejected=["p1"],
        shown=[ShownItem("p2", "Park", "Park")],
    )
    back = ChatState.from_dict(s.to_dict())
    assert back == s
    ctx = to_context(back, datetime(2012, 6, 4, 16, tzinfo=UTC), None, None)
    assert ctx.include_kinds == ("Park",) and ctx.exclude_kinds == ("Coffee Shop",)
    assert ctx.exclude_items == ("p1",) and ctx.exclude_visited and ctx.args["max_distance_km"] == 2.0
    assert ChatState.from_dict({"max_km": 1.5}).args == {"max_distance_km": 1.5}  # rows stored before
    assert ChatState.from_dict({"constraints": {"include": ["bar"]}}) == ChatState()  # old rows load


def test_named_times_in_the_users_clock() -> None:
    now = datetime(2012, 6, 4, 20, 0, tzinfo=UTC)  # Monday 16:00 in New York (UTC-4)
    assert when_time(now, "now", -240) == now
    assert when_time(now, "evening", -240) == datetime(2012, 6, 4, 23, 0, tzinfo=UTC)  # 19:00 local
    assert when_time(now, "morning", -240) == datetime(2012, 6, 5, 13, 0, tzinfo=UTC)  # tomorrow 9:00
    assert when_time(now, "weekend", -240).weekday() == 5


def test_a_negated_wish_or_kind_becomes_an_exclusion() -> None:
    """Seen with the 1.5B model: "no donuts or bagels" came back as the wish, and "something
    spicy, not Indian" with the kind "Indian Restaurant" and no exclusion."""
    v = verify(
        TurnIntent(action="recommend", wish="donuts or bagels", kinds=["Bakery"], avoid=["donuts"]),
        "my lab starts soon, no donuts or bagels",
        "",
        0,
        ChatState(),
    )
    assert v.intent.wish == "" and v.intent.kinds == [] and "donuts or bagels" in v.intent.avoid
    v2 = verify(
        TurnIntent(action="recommend", wish="something spicy", kinds=["Indian Restaurant"]),
        "something spicy, not Indian",
        "",
        0,
        ChatState(),
    )
    assert v2.intent.kinds == [] and v2.intent.avoid == ["Indian Restaurant"]


def test_a_broader_name_for_a_shown_kind_is_not_an_invention() -> None:
    rules = _rules(shown_categories={"Italian Restaurant"}, catalog_categories=[*CATALOG, "Restaurant"])
    assert check_reply("This restaurant is new to you.", rules) == []
    assert check_reply("Try the Thai Restaurant.", rules) != []


def test_an_exclusion_the_model_missed_is_still_honoured() -> None:
    v = verify(
        TurnIntent(action="recommend", wish="something spicy"),
        "something spicy, not Indian",
        "",
        0,
        ChatState(),
    )
    assert v.intent.avoid == ["Indian"] and any("model missed" in d for d in v.dropped)
    # a negated word that is the wish itself is not turned against it
    v2 = verify(
        TurnIntent(action="recommend", wish="not too loud bar"), "a not too loud bar", "", 0, ChatState()
    )
    assert "loud bar" not in " ".join(v2.intent.avoid)


def test_contracted_negations_are_negations() -> None:
    """Seen in the films chat on the rules path: "a sci-fi movie that isn't an action film" showed
    action films, because only "no/not/without…" counted as a negation."""
    from agent.chat.intent import negated_phrases

    assert negated_phrases("a sci-fi movie that isn't an action film") == ["action film"]
    assert negated_phrases("something that isnt scary") == ["scary"]
    assert negated_phrases("I don't want horror tonight") == ["horror tonight"]
    assert negated_phrases("a sci-fi movie, it's great") == []
    assert negated_phrases("I don't want to go far") == []  # a verb, not a thing to avoid


@pytest.mark.parametrize(
    ("message", "new"),
    [
        ("I'm a New Yorker looking for dinner", False),
        ("im a new yorker, where should I eat", False),
        ("Happy New Year! somewhere to celebrate", False),
        ("a shoe shop like New Balance", False),
        ("somewhere new for dinner", True),
        ("a new place near New Haven", True),
        ("somewhere I have never been", True),
    ],
)
def test_new_in_a_name_is_not_a_wish_for_new_places(message: str, new: bool) -> None:
    """ "New Yorker" set "only places new to me" (the LLM and the rules both); now neither may."""
    assert (rules_intent(message).new_places == "yes") is new
    claimed = TurnIntent(action="recommend", wish="dinner", new_places="yes")
    kept = verify(claimed, message, "", 0, ChatState()).intent
    assert (kept.new_places == "yes") is new
    assert ("new_places" in intent_json_schema(message)["properties"]) is new


@pytest.mark.parametrize("message", ["no thanks", "no, thank you", "not sure", "no worries, something cheap"])
def test_set_phrases_are_not_exclusions(message: str) -> None:
    assert rules_intent(message).avoid == []
    claimed = TurnIntent(action="recommend", wish="")
    assert verify(claimed, message, "", 3, ChatState()).intent.avoid == []
