"""Content similarity by shared tags, alone and as a candidate signal of the recommender."""

from __future__ import annotations

from models.content import ContentLinks
from models.popular_heads import PopularHeads
from models.profile import UserProfile
from models.recommender import HybridRecommender
from schemas.events import Event, ItemRecord


def test_items_sharing_more_tags_are_stronger_neighbours() -> None:
    content = ContentLinks()
    content.learn_item(0, ["noir", "paris", "1950s"])
    content.learn_item(1, ["noir", "paris", "1950s"])
    content.learn_item(2, ["paris"])
    content.learn_item(3, ["space"])
    neighbours = content.links.neighbors(0)
    assert neighbours[1] > neighbours[2]
    assert 3 not in neighbours


def test_a_tag_links_at_most_per_tag_latest_items() -> None:
    content = ContentLinks(per_tag=3)
    for item in range(10):
        content.learn_item(item, ["common"])
    assert set(content.links.neighbors(9)) == {6, 7, 8}


def test_the_recommender_ranks_items_sharing_tags_with_the_users_items_first() -> None:
    rec = HybridRecommender(seed=0)
    rec.learn_item(ItemRecord(item_id="seen", tags=("noir", "paris")))
    for n in range(8):
        tags = ("noir", "paris") if n == 5 else ("space",)
        rec.learn_item(ItemRecord(item_id=f"i{n}", tags=tags))
    profile = UserProfile("u")
    event = Event(event_id="e1", user_id="u", item_id="seen", type="click", ts=10**12)
    rec.learn_one(event, profile)
    profile.observe(event, rec.signal(event))
    assert rec.recommend(profile, 3)[0][0] == "i5"


def test_category_heads_follow_the_lists_after_each_refresh() -> None:
    heads = PopularHeads(half_life_ms=10**9, depth=4, refresh_every=2)
    for item in range(4):
        heads.add(item, [0])
    for _ in range(3):
        heads.learn_one(3, [0], 1.0, ts=0)
    overall, by_category = heads.kernel_state()
    assert overall[0] == 3
    assert by_category[0, 0] == 3


def test_an_item_without_categories_competes_on_its_other_signals() -> None:
    rec = HybridRecommender(seed=0, explore_slots=0)
    rec.learn_item(ItemRecord(item_id="seen", tags=("noir",)))
    rec.learn_item(ItemRecord(item_id="plain", categories=("x",)))
    rec.learn_item(ItemRecord(item_id="bare", tags=("noir",)))
    profile = UserProfile("u")
    event = Event(event_id="e1", user_id="u", item_id="seen", type="click", ts=10**12)
    rec.learn_one(event, profile)
    profile.observe(event, rec.signal(event))
    ranked = rec.recommend(profile, 2)
    assert ranked[0][0] == "bare"
    assert all(score > float("-inf") for _, score in ranked)
