"""What each scale-out design would cost in quality, in-process: prequential HR@10 on one stream.

Users are split over N simulated workers by a hash of their id (as Kafka splits them by partition); each
worker ranks only its own users after each of their events, and HR@10 is counted as the worker does
(`streams.quality`: a liked, not yet consumed item in the top 10 of the user's previous list). Designs:

- ``one``: a single model learns every event and ranks every user (the 1-worker engine);
- ``replicated``: every worker's model learns every event (item-side state from all partitions), its
  blend only from its own users' rankings (what a worker reading all partitions does);
- ``split``: every worker's model learns its own users' events only (the engine before issue G);
- ``snapshot:K``: item-keyed tables merged elsewhere and broadcast every K events: every K events each
  worker's model is replaced by a copy of a model that learned everything, and learns its own users'
  events on top until the next copy (the best case of repartitioning with periodic snapshots).

    .venv/bin/python bench/state_quality.py --workers 3 --designs one,replicated,split,snapshot:2000
"""

from __future__ import annotations

import argparse
import pickle
import zlib
from pathlib import Path

import orjson

from engine.ingest.backfill import movielens_events, movielens_items
from models.profile import UserProfile
from models.recommender import HybridRecommender
from schemas.events import Event, ItemRecord

K = 10
TOP_N = 50


def _owner(user_id: str, workers: int) -> int:
    return zlib.crc32(user_id.encode()) % workers


def run(design: str, catalog: list[ItemRecord], events: list[Event], workers: int) -> dict[str, object]:
    """HR@10 of ``design`` over the stream (summed hits / summed scored over workers)."""
    every = int(design.split(":")[1]) if design.startswith("snapshot:") else 0
    n = 1 if design == "one" else workers
    models = [HybridRecommender(seed=0) for _ in range(n)]
    merged = HybridRecommender(seed=0) if every else None
    for model in [*models, *([merged] if merged else [])]:
        for record in catalog:
            model.learn_item(record)
    profiles: dict[str, UserProfile] = {}
    lists: dict[str, list[str]] = {}
    hits = scored = 0
    for index, event in enumerate(events):
        if merged is not None and index % every == 0 and index:
            blob = pickle.dumps(merged, protocol=pickle.HIGHEST_PROTOCOL)
            models = [pickle.loads(blob) for _ in range(n)]
        owner = 0 if n == 1 else _owner(event.user_id, n)
        model = models[owner]
        profile = profiles.setdefault(event.user_id, UserProfile(event.user_id))
        signal = model.signal(event)
        shown = lists.get(event.user_id)
        if signal.label == 1 and shown is not None and not profile.has_consumed(event.item_id):
            scored += 1
            hits += event.item_id in shown
        if design == "replicated":
            for each in models:
                each.learn_one(event, profile)
        else:
            model.learn_one(event, profile)
            if merged is not None:
                merged.learn_one(event, profile)
        profile.observe(event, signal)
        lists[event.user_id] = [item for item, _ in model.recommend(profile, TOP_N, event.context, event.ts)][
            :K
        ]
    return {"design": design, "workers": n, "hits": hits, "scored": scored, "hr": round(hits / scored, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--path", default="/work/shared/datasets/ml-latest-small")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--designs", default="one,replicated,split,snapshot:2000,snapshot:20000")
    parser.add_argument("--events", type=int, default=0, help="the first N ratings (0: all)")
    args = parser.parse_args()
    ratings = Path(args.path) / "ratings.csv"
    catalog, events = movielens_items(ratings), movielens_events(ratings)
    if args.events:
        events = events[: args.events]
    for design in args.designs.split(","):
        print(orjson.dumps(run(design, catalog, events, args.workers)).decode(), flush=True)


if __name__ == "__main__":
    main()
