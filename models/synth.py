"""Seeded synthetic clickstream: a catalog, users with hidden category tastes, and the events they make.

Feeds tests, ``personalize simulate`` and benchmarks. Pure computation on numpy; it does no I/O.
"""

from __future__ import annotations

__all__ = ["DEVICES", "Clickstream"]

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from schemas.events import Context, Event, EventType, ItemRecord

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

DEVICES = ("mobile", "desktop", "tablet")
_DEVICE_P = (0.55, 0.35, 0.10)
#: (number of categories, factor) each device boosts; then the evening (18-23h UTC) boost.
_DEVICE_BOOST = ((3, 2.0), (3, 2.0), (2, 2.0))
_EVENING_BOOST = (3, 2.0)
_LOCALES = (("en-US", "US"), ("en-GB", "GB"), ("de-DE", "DE"), ("fr-FR", "FR"))
_LOCALE_P = (0.45, 0.15, 0.20, 0.20)
_LANGUAGES = ("en", "de", "fr", "es")
_LANGUAGE_P = (0.55, 0.15, 0.15, 0.15)
_N_TAGS = 40
_MAIN_TYPES = tuple(EventType(t) for t in ("view", "click", "add_to_cart", "purchase", "dwell", "rating"))
_MAIN_P = (0.60, 0.25, 0.07, 0.03, 0.03, 0.02)
_P_IMPRESSION = 0.10
_P_DISMISS = 0.03
_P_PDP_VIEW, _P_PDP_OTHER = 0.3, 0.7  # chance of surface "pdp" for a view / any other main event
_TASTE_ALPHA = 0.3
_ZIPF_EXPONENT = 1.0
_BLOCK = 4096
_HOUR_MS = 3_600_000


class Clickstream:
    """A reproducible synthetic world: same arguments, same catalog, users and events.

    Items ``i1..iM`` have a primary category (``categories[0]``; every category gets one when
    ``n_items >= n_categories``), 20% a secondary one, 1-3 tags and ``price``/``language``; within its
    primary category an item's popularity is Zipf-like. Users ``u1..uN`` have a Dirichlet(0.3) taste over
    categories, a fixed device, locale and region, and a lognormal activity weight.

    Each *action* picks a user ∝ activity and a category ∝ taste × device boost × evening boost (by the
    hour of its ``ts`` in UTC), then an item ∝ popularity in that category, and emits one event of type
    view/click/add_to_cart/purchase/dwell/rating (60/25/7/3/3/2%); then, with probability 0.1, an
    ``impression`` of a uniformly random other item and, with 0.03, a ``dismiss`` of an item from one of
    the user's least liked third of categories. Each emitted event takes the next index ``k``:
    ``ts = start_ms + k * step_ms``, ``event_id = f"s{seed}-{k}"``. The first ``n_users`` events are one
    event per user in shuffled order, without extras: all users appear when ``n_events >= n_users``.
    With ``drift_at`` set, a ``drift_fraction`` share of users (rounded) get a fresh taste from event
    index ``drift_at`` on. ``device_boosts`` and ``evening_boosts`` name the boosted categories.

    >>> s = Clickstream(n_users=3, n_items=20, seed=7)
    >>> len(s.items()), s.categories[:2], s.items()[0].item_id
    (20, ('c01', 'c02'), 'i1')
    >>> evs = list(s.events(5))
    >>> [e.event_id for e in evs]
    ['s7-0', 's7-1', 's7-2', 's7-3', 's7-4']
    >>> sorted({e.user_id for e in evs[:3]}), evs[1].ts - evs[0].ts
    (['u1', 'u2', 'u3'], 1000)
    >>> round(sum(s.taste("u2").values()), 9), s.user_context("u2").device in DEVICES
    (1.0, True)
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        *,
        n_categories: int = 12,
        seed: int = 0,
        start_ms: int = 1_700_000_000_000,
        step_ms: int = 1_000,
        drift_at: int | None = None,
        drift_fraction: float = 0.5,
    ) -> None:
        if n_users < 1 or n_items < 1 or not 1 <= n_categories <= 99:
            raise ValueError("need n_users >= 1, n_items >= 1 and 1 <= n_categories <= 99")
        if seed < 0 or step_ms < 1 or (drift_at is not None and drift_at < 0):
            raise ValueError("seed and drift_at must be >= 0 and step_ms >= 1")
        if not 0.0 <= drift_fraction <= 1.0:
            raise ValueError(f"drift_fraction must be within 0..1, got {drift_fraction}")
        self.n_users, self.n_items, self.seed = n_users, n_items, seed
        self.start_ms, self.step_ms, self.drift_at = start_ms, step_ms, drift_at
        self.categories: tuple[str, ...] = tuple(f"c{c + 1:02d}" for c in range(n_categories))
        # Independent streams, so e.g. the catalog does not change with n_users or drift settings.
        catalog, users, world, self._event_seed, drift = np.random.SeedSequence(seed).spawn(5)
        self._build_catalog(np.random.default_rng(catalog))
        self._build_users(np.random.default_rng(users))
        self._build_effects(np.random.default_rng(world))
        self._taste_after = self._taste_before
        if drift_at is not None:
            rng = np.random.default_rng(drift)
            moved = rng.choice(n_users, size=round(drift_fraction * n_users), replace=False)
            self._taste_after = self._taste_before.copy()
            self._taste_after[moved] = rng.dirichlet([_TASTE_ALPHA] * n_categories, size=len(moved))
        self._emitted = 0

    def _build_catalog(self, rng: np.random.Generator) -> None:
        n_cat, m = len(self.categories), self.n_items
        if m >= n_cat:
            primary = np.concatenate([np.arange(n_cat), rng.integers(n_cat, size=m - n_cat)])
            rng.shuffle(primary)
        else:
            primary = rng.choice(n_cat, size=m, replace=False)
        second = (primary + rng.integers(1, max(n_cat, 2), size=m)) % n_cat
        has_second = (rng.random(m) < 0.2) & (n_cat > 1)
        prices = np.round(rng.lognormal(3.0, 0.8, size=m), 2)
        languages = rng.choice(len(_LANGUAGES), size=m, p=_LANGUAGE_P)
        # 1-3 distinct tags from an 8-tag window that depends on the primary category.
        offsets = rng.random((m, 8)).argsort(axis=1)[:, :3]
        tags = (primary[:, None] * 3 + offsets) % _N_TAGS + 1
        n_tags = rng.integers(1, 4, size=m)
        cats = [
            (p, q) if two else (p,)
            for p, q, two in zip(primary.tolist(), second.tolist(), has_second.tolist(), strict=True)
        ]
        self._catalog = list(
            zip(cats, tags.tolist(), n_tags.tolist(), prices.tolist(), languages.tolist(), strict=True)
        )
        self._items: list[ItemRecord] | None = None  # built on first use: validation is the slow part
        # Items sorted by (category, popularity rank); gcum[k] = category + cumulative share within it,
        # so one searchsorted on category + uniform draws an item ∝ popularity in that category.
        sizes = np.bincount(primary, minlength=n_cat)
        order, gcum = [], []
        for c in range(n_cat):
            order.append(np.flatnonzero(primary == c)[rng.permutation(sizes[c])])  # most popular first
            weights = 1.0 / np.arange(1, sizes[c] + 1) ** _ZIPF_EXPONENT
            gcum.append(c + np.cumsum(weights) / max(weights.sum(), 1.0))
        self._order: Ints = np.concatenate(order).astype(np.int64)
        self._gcum: Floats = np.concatenate(gcum)
        self._ends: Ints = np.cumsum(sizes).astype(np.int64)
        self._nonempty: Floats = (sizes > 0).astype(np.float64)
        self._last_nonempty = int(np.flatnonzero(self._nonempty)[-1])
        self._item_ids = [f"i{j + 1}" for j in range(m)]

    def _build_users(self, rng: np.random.Generator) -> None:
        n = self.n_users
        self._taste_before: Floats = rng.dirichlet([_TASTE_ALPHA] * len(self.categories), size=n)
        self._device: Ints = rng.choice(len(DEVICES), size=n, p=_DEVICE_P).astype(np.int64)
        locales = rng.choice(len(_LOCALES), size=n, p=_LOCALE_P)
        activity = rng.lognormal(0.0, 1.0, size=n)
        self._activity_cum: Floats = np.cumsum(activity) / activity.sum()
        self._user_ids = [f"u{u + 1}" for u in range(n)]
        # Few distinct contexts exist (device x locale x surface), so users share frozen instances.
        shared = {
            (d, loc, s): Context(
                device=DEVICES[d], locale=_LOCALES[loc][0], region=_LOCALES[loc][1], surface=s
            )
            for d in range(len(DEVICES))
            for loc in range(len(_LOCALES))
            for s in ("home", "pdp", None)
        }
        self._contexts = [
            [shared[d, loc, s] for s in (None, "home", "pdp")]
            for d, loc in zip(self._device.tolist(), locales.tolist(), strict=True)
        ]

    def _build_effects(self, rng: np.random.Generator) -> None:
        n_cat = len(self.categories)
        perm, start = rng.permutation(n_cat), 0
        picks: list[tuple[NDArray[np.int64], float]] = []
        for k, factor in (*_DEVICE_BOOST, _EVENING_BOOST):
            picks.append((perm[np.arange(start, start + k) % n_cat], factor))
            start += k
        self._device_fx: Floats = np.ones((len(DEVICES), n_cat))
        for d, (cats, factor) in enumerate(picks[:-1]):
            self._device_fx[d, cats] = factor
        self._evening_fx: Floats = np.ones(n_cat)
        self._evening_fx[picks[-1][0]] = picks[-1][1]
        names = [tuple(self.categories[c] for c in sorted(cats.tolist())) for cats, _ in picks]
        self.device_boosts: dict[str, tuple[str, ...]] = dict(zip(DEVICES, names[:-1], strict=True))
        self.evening_boosts: tuple[str, ...] = names[-1]

    def items(self) -> list[ItemRecord]:
        """The catalog, ``i1..iM`` in order; ``categories[0]`` is the item's primary category."""
        if self._items is None:
            self._items = [
                ItemRecord(
                    item_id=f"i{j + 1}",
                    categories=tuple(self.categories[c] for c in cats),
                    tags=tuple(f"t{t}" for t in sorted(tag_row[:k])),
                    attributes={"price": price, "language": _LANGUAGES[lang]},
                )
                for j, (cats, tag_row, k, price, lang) in enumerate(self._catalog)
            ]
        return list(self._items)

    def _user(self, user_id: str) -> int:
        u = int(user_id[1:]) - 1 if user_id[:1] == "u" and user_id[1:].isdigit() else -1
        if not 0 <= u < self.n_users:
            raise KeyError(f"no such user: {user_id!r}")
        return u

    def taste(self, user_id: str) -> dict[str, float]:
        """The user's true category preference now (after drift once the last stream passed ``drift_at``).

        Sums to 1 over all categories; "now" is the position of the most recently advanced ``events()``.
        """
        drifted = self.drift_at is not None and self._emitted >= self.drift_at
        row = (self._taste_after if drifted else self._taste_before)[self._user(user_id)]
        return dict(zip(self.categories, row.tolist(), strict=True))

    def user_context(self, user_id: str) -> Context:
        """The user's fixed device, locale and region (no surface; events add "home" or "pdp")."""
        return self._contexts[self._user(user_id)][0]

    def events(self, n_events: int) -> Iterator[Event]:
        """A fresh stream of the first ``n_events`` events; ``events(n)`` is a prefix of ``events(n + k)``."""
        if n_events < 0:
            raise ValueError(f"n_events must be >= 0, got {n_events}")
        return self._stream(n_events)

    def _stream(self, n_events: int) -> Iterator[Event]:
        rng = np.random.default_rng(self._event_seed)
        first = rng.permutation(self.n_users)
        self._emitted = base = block = 0
        prefix = f"s{self.seed}-"
        while base < n_events:
            rows = self._block(rng, first, block, base)
            for k, (u, i, etype, value, pdp) in enumerate(rows, start=base):
                if k >= n_events:
                    return
                self._emitted = k + 1
                yield Event(
                    event_id=prefix + str(k),
                    user_id=self._user_ids[u],
                    item_id=self._item_ids[i],
                    type=etype,
                    value=value,
                    ts=self.start_ms + k * self.step_ms,
                    context=self._contexts[u][2 if pdp else 1],
                )
            base += len(rows)
            block += 1

    def _pick(self, cats: Ints, uniform: Floats) -> Ints:
        pos = np.minimum(np.searchsorted(self._gcum, cats + uniform, side="right"), self._ends[cats] - 1)
        return self._order[pos]

    def _block(
        self, rng: np.random.Generator, first: Ints, block: int, base: int
    ) -> list[tuple[int, int, EventType, float, bool]]:
        """One block of ``_BLOCK`` actions starting at event index ``base``, as event rows in order."""
        n = self.n_users
        r = rng.random((9, _BLOCK))
        kinds = rng.choice(len(_MAIN_TYPES), size=_BLOCK, p=_MAIN_P)
        dwell = np.maximum(np.round(rng.lognormal(np.log(20.0), 0.9, size=_BLOCK), 1), 0.1)
        noise = rng.normal(0.0, 0.7, size=_BLOCK)
        actions = np.arange(block * _BLOCK, (block + 1) * _BLOCK)
        warm = actions < n
        users = np.minimum(np.searchsorted(self._activity_cum, r[0], side="right"), n - 1)
        users[warm] = first[actions[warm]]
        extra_imp = (r[4] < _P_IMPRESSION) & ~warm
        extra_dis = (r[5] < _P_DISMISS) & ~warm
        counts = 1 + extra_imp.astype(np.int64) + extra_dis
        index = base + np.concatenate([[0], np.cumsum(counts)[:-1]])  # event index of each main event
        if self.drift_at is None:
            tastes = self._taste_before[users]
        else:
            tastes = np.where(
                (index >= self.drift_at)[:, None], self._taste_after[users], self._taste_before[users]
            )
        tastes = tastes * self._nonempty + 1e-12 * self._nonempty
        evening = (self.start_ms + index * self.step_ms) // _HOUR_MS % 24 >= 18
        weights = (
            tastes * self._device_fx[self._device[users]] * np.where(evening[:, None], self._evening_fx, 1.0)
        )
        cum = np.cumsum(weights, axis=1)
        cats = np.minimum((cum <= r[1][:, None] * cum[:, -1:]).sum(axis=1), self._last_nonempty)
        items = self._pick(cats, r[2])
        rows_ = np.arange(_BLOCK)
        like = tastes[rows_, cats] / tastes.max(axis=1)
        ratings = np.clip(np.rint(1.5 + 3.5 * like + noise), 1.0, 5.0)
        values = np.where(kinds == 4, dwell, np.where(kinds == 5, ratings, 1.0))
        pdp = r[3] < np.where(kinds == 0, _P_PDP_VIEW, _P_PDP_OTHER)
        shown = np.minimum((r[6] * self.n_items).astype(np.int64), self.n_items - 1)
        shown = np.where((shown == items) & (self.n_items > 1), (shown + 1) % self.n_items, shown)
        disliked = np.argsort(np.where(self._nonempty > 0, tastes, np.inf), axis=1)
        k_low = max(1, int(self._nonempty.sum()) // 3)
        dismissed = self._pick(disliked[rows_, (r[7] * k_low).astype(np.int64)], r[8])
        out: list[tuple[int, int, EventType, float, bool]] = []
        columns = (users, items, kinds, values, pdp, extra_imp, shown, extra_dis, dismissed)
        for u, i, kind, v, p, imp, s, dis, d in zip(*(c.tolist() for c in columns), strict=True):
            out.append((u, i, _MAIN_TYPES[kind], v, p))
            if imp:
                out.append((u, s, EventType.IMPRESSION, 1.0, False))
            if dis:
                out.append((u, d, EventType.DISMISS, 1.0, False))
        return out
