"""Users' category shares and the fit of items' categories (`models.taste`)."""

from __future__ import annotations

import numpy as np

from models.taste import LIKED_WEIGHT, CategoryShares, ItemCategories


def _catalog() -> ItemCategories:
    cats = ItemCategories()
    cats.set(0, [0])
    cats.set(1, [1])
    cats.set(2, [0, 1])
    return cats


def test_shares_follow_the_users_own_positives_and_forget_old_ones() -> None:
    shares, cats = CategoryShares(forget=0.1, prior=0.0), _catalog()
    for item in [0] * 30 + [1] * 30:
        shares.learn_item("u", cats, item, 3, trust=2.0)
    now = shares.vector("u", 3)
    assert now[1] > 0.9 > 0.05 > now[0] > 0.0  # the recent taste dominates; the old one is not erased
    assert abs(now.sum() - 1.0) < 1e-9 and now[2] == 0.0


def test_a_new_user_gets_everyones_shares_and_moves_towards_their_own() -> None:
    shares, cats = CategoryShares(forget=0.0, prior=2.0), _catalog()
    for user in ("a", "b", "c"):
        shares.learn_item(user, cats, 0, 2, trust=2.0)
    assert shares.vector("new", 2).tolist() == [1.0, 0.0]
    before, _ = shares.learn_item("new", cats, 1, 2, trust=2.0)
    assert before.size == 0  # nothing of the user's own before this positive
    one = shares.vector("new", 2)[1]
    for _ in range(5):
        shares.learn_item("new", cats, 1, 2, trust=2.0)
    assert 0.0 < one < shares.vector("new", 2)[1] < 1.0


def test_onboarding_likes_count_as_own_interest_and_a_reset_forgets_them() -> None:
    shares = CategoryShares()
    shares.like("u", np.array([4, 2]))
    assert shares.own("u", 5).tolist() == [0.0, 0.0, LIKED_WEIGHT, 0.0, LIKED_WEIGHT]
    assert shares.evidence("u") == 2 * LIKED_WEIGHT
    shares.forget_user("u")
    assert shares.own("u", 5).tolist() == [0.0] * 5 and shares.evidence("u") == 0.0


def test_an_items_fit_goes_to_the_category_its_users_like() -> None:
    shares, cats = CategoryShares(forget=0.0), _catalog()
    for n in range(20):  # jazz fans (category 0) also take item 2, listed under jazz and rock
        fan = f"fan{n}"
        for _ in range(5):
            shares.learn_item(fan, cats, 0, 2, trust=2.0)
        shares.learn_item(fan, cats, 2, 2, trust=2.0)
    jazz, rock = cats.fractions(2).tolist()
    assert jazz > 0.85 and rock < 0.15
    # ... so a fan's positive on item 2 counts mostly as jazz
    before = shares.own("fan0", 2)
    shares.learn_item("fan0", cats, 2, 2, trust=2.0)
    gained = shares.own("fan0", 2) - before
    assert gained[0] > 0.85 and gained[1] < 0.15
    cats.set(2, [1, 0])  # the catalog changed the item's categories: their fit starts afresh
    assert cats.fractions(2).tolist() == [0.5, 0.5]


def test_items_without_categories_and_unknown_rows_are_handled() -> None:
    cats = ItemCategories()
    cats.reserve(100)
    assert cats.ids(99).size == 0 and cats.fractions(99).size == 0 and cats.lists[99] == []
    cats.set(3, [5, 6, 7])  # wider than any row before
    assert cats.ids(3).tolist() == [5, 6, 7] and cats.ids(2).size == 0 and cats.lists[3] == [5, 6, 7]
