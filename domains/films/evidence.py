"""The films domain's evidence: what links a shown film to the person by their taste.

Beside the neutral rules (domains/rules.py), worded for films: a film they rated highly lately
that shares a genre with it, what people rate after their latest film, a genre of the film that
they rate highly (with its average and count), the decade most of their films are from, similar
raters, and how many people rated it lately. Every number is one the faithfulness checker holds the text to.
"""

from __future__ import annotations

from collections.abc import Sequence

from domains.evidence import Evidence, ItemEvidence, Rule, Scene, num
from domains.films.formats import title_year
from domains.rules import item_evidence, liked_kind, new_to_them, rising_interest, slot_habits

POPULAR_NOW = 2.0  # log1p of ratings in the catalog's last 30 days: about 6 or more
RANK_NEAR = 25  # a film among a source's first 25 for this person
LOVED = 4.0  # stars


def genre_rated_high(s: Scene) -> Evidence | None:
    f = s.fact("taste.genres")
    if f is None:
        return None
    for g in f.value.get("liked", []):
        if g["genre"] in s.c.kinds:
            mean, n = float(g["mean"]), int(g["ratings"])
            return Evidence(
                f.id,
                f"You rate {g['genre']} films highly ({num(round(mean, 1))} stars on average over {n}).",
                frozenset({num(round(mean, 1)), str(n)}),
                kinds=frozenset({g["genre"]}),
                topics=frozenset({"genre", "rated"}),
            )
    return None


def decade_of_theirs(s: Scene) -> Evidence | None:
    f = s.fact("taste.decades")
    year = s.c.attrs.get("year") or title_year(s.c.name or "")
    if f is None or not year or int(year) // 10 * 10 != f.value.get("top_decade"):
        return None
    decade, share = int(f.value["top_decade"]), round(100 * float(f.value["share"]))
    return Evidence(
        f.id,
        f"It is from the {decade}s, like most of the films you rate ({share}%).",
        frozenset({str(decade), f"{decade}s", str(share), str(year)}),
        topics=frozenset({"rated"}),
    )


def popular_lately(s: Scene) -> Evidence | None:
    if s.c.features.get("popular_30d_log", 0.0) < POPULAR_NOW:
        return None
    return Evidence("item.popular_now", "Many people have rated it lately.", topics=frozenset({"popular"}))


def after_their_latest(s: Scene) -> Evidence | None:
    """People who rated the person's latest film went on to rate this one (the sequence source)."""
    f = s.c.features
    if min(f.get("rank_next", RANK_NEAR + 1), f.get("rank_sequence", RANK_NEAR + 1)) > RANK_NEAR:
        return None
    last = s.name_of(s.moment.last_item) if s.moment.last_item else None
    if not last:
        return None
    return Evidence(
        "item.after_latest",
        s.say("others_next", last=last),
        kinds=frozenset({last}),
        topics=frozenset({"similar", "rated"}),
    )


def like_one_they_loved(s: Scene) -> Evidence | None:
    """A film they rated highly lately that shares a genre with this one."""
    f = s.fact("taste.recent")
    if f is None:
        return None
    for film in f.value.get("films", []):
        shared = [g for g in film.get("genres", []) if g in s.c.kinds]
        if float(film.get("stars", 0)) >= LOVED and shared:
            stars = num(float(film["stars"]))
            return Evidence(
                f.id,
                f"You gave {film['title']} {stars} stars lately; this is {shared[0]} too.",
                frozenset({stars}),
                kinds=frozenset({film["title"], shared[0]}),
                topics=frozenset({"rated", "genre", "trend"}),
            )
    return None


def people_like_them(s: Scene) -> Evidence | None:
    if s.c.features.get("rank_similar_raters", RANK_NEAR + 1) > RANK_NEAR:
        return None
    return Evidence("item.similar_people", s.say("similar"), topics=frozenset({"similar"}))


FILM_RULES: tuple[Rule, ...] = (
    like_one_they_loved,
    after_their_latest,
    genre_rated_high,
    slot_habits(),
    rising_interest,
    decade_of_theirs,
    liked_kind,
    people_like_them,
    popular_lately,
    new_to_them,
)


def film_evidence(scene: Scene, kind: str, rules: Sequence[Rule] = FILM_RULES) -> ItemEvidence:
    out = item_evidence(scene, rules, kind)
    year = scene.c.attrs.get("year") or title_year(scene.c.name or "")
    if year:
        out.own_numbers = out.own_numbers | {str(year), f"{int(year) // 10 * 10}s"}
        out.attrs = {"year": year}
    return out
