"""What scale-out would replicate: the model's per-event costs split by who must pay them (docs/scale-out.md).

In-process, no Kafka and no Redis: one stream (MovieLens ratings, or the synthetic clickstream) goes
through the worker's per-event steps, each timed on its own:

- ``decode``: the record's bytes to an `Event` (orjson + the contract's validation);
- ``learn``: `HybridRecommender.learn_one`, the item-side statistics plus the user's history and
  affinity row (the part every worker pays for every event when each learns all partitions);
- ``profile``: the user's profile read, observed and written back as the table holds it (owner only);
- ``rank`` and ``explain``: the user's list after the event (owner only; explained once per batch in
  the worker, timed here once per event, so an upper bound).

It also weighs what an item-keyed design would broadcast: the pickled model (a snapshot), how long it
takes to pickle and to load, and how the item-side arrays grow per item and per user. Prints JSON.

    .venv/bin/python bench/state_costs.py --dataset movielens --path /work/shared/datasets/ml-latest-small
    .venv/bin/python bench/state_costs.py --dataset synthetic --events 100000
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
from collections.abc import Iterable
from pathlib import Path

import orjson

from engine.ingest.backfill import movielens_events, movielens_items
from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.synth import Clickstream
from schemas.events import Event, ItemRecord, decode_object, encode, parse_event

PHASES = ("decode", "learn", "profile", "rank", "explain")


def _stream(args: argparse.Namespace) -> tuple[list[ItemRecord], list[Event]]:
    if args.dataset == "movielens":
        ratings = Path(args.path) / "ratings.csv"
        events = movielens_events(ratings)
        if args.events:
            events = events[: args.events]
        return movielens_items(ratings), events
    world = Clickstream(args.users, args.items, seed=0)
    return world.items(), list(world.events(args.events))


def measure(items: Iterable[ItemRecord], events: list[Event], top_n: int) -> dict[str, object]:
    model = HybridRecommender(seed=0)
    for record in items:
        model.learn_item(record)
    raws = [encode(event) for event in events]
    table: dict[str, dict[str, object]] = {}
    spent = dict.fromkeys(PHASES, 0.0)
    # CPU time of this thread: the machine is shared, and waiting for a core is not the model's cost.
    clock = time.thread_time
    gc.collect()
    for raw in raws:
        t0 = clock()
        event = parse_event(decode_object(raw))
        t1 = clock()
        stored = table.get(event.user_id)
        profile = UserProfile.from_dict(stored) if stored is not None else UserProfile(event.user_id)
        t2 = clock()
        model.learn_one(event, profile)
        t3 = clock()
        profile.observe(event, model.signal(event))
        table[event.user_id] = profile.to_dict()
        t4 = clock()
        ranked = model.recommend(profile, top_n, event.context, event.ts)
        t5 = clock()
        model.explain(profile, [item for item, _ in ranked], event.context, event.ts)
        t6 = clock()
        spent["decode"] += t1 - t0
        spent["profile"] += (t2 - t1) + (t4 - t3)
        spent["learn"] += t3 - t2
        spent["rank"] += t5 - t4
        spent["explain"] += t6 - t5
    n = len(raws)
    us = {phase: round(spent[phase] / n * 1e6, 1) for phase in PHASES}
    replicated = us["decode"] + us["learn"]
    partitioned = us["profile"] + us["rank"] + us["explain"]
    started = clock()
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    pickled_s = clock() - started
    started = clock()
    pickle.loads(blob)
    loaded_s = clock() - started
    users = len({e.user_id for e in events})
    catalog = len(model._items)  # noqa: SLF001 - a measurement of the model's own size
    return {
        "events": n,
        "users": users,
        "items": catalog,
        "us_per_event": us,
        "replicated_us": round(replicated, 1),
        "partitioned_us": round(partitioned, 1),
        # One core per worker, every worker learning every event: rate = 1 / (r + p / N).
        "projected_events_per_s": {
            str(workers): round(1e6 / (replicated + partitioned / workers)) for workers in (1, 2, 3, 4, 8, 16)
        },
        "snapshot_bytes": len(blob),
        "snapshot_pickle_s": round(pickled_s, 3),
        "snapshot_load_s": round(loaded_s, 3),
        "event_bytes": round(sum(len(r) for r in raws) / n, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=("movielens", "synthetic"), default="synthetic")
    parser.add_argument("--path", default="/work/shared/datasets/ml-latest-small")
    parser.add_argument("--events", type=int, default=100_000, help="0 for all (MovieLens)")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--top-n", type=int, default=50)
    args = parser.parse_args()
    items, events = _stream(args)
    report = {"dataset": args.dataset, **measure(items, events, args.top_n)}
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
