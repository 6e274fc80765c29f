"""Learning: online recommenders and their state. Pure: no Kafka, Redis or network imports."""

# ruff: noqa: E402 - the kernel cache is configured before any module that compiles a kernel is imported

from models import kernel_cache

kernel_cache.configure()  # before the kernels' modules are imported (their caches are read then)

from models.affinity import CategoryAffinity
from models.cooccurrence import CoOccurrence
from models.popularity import DecayedPopularity
from models.profile import UserProfile
from models.recommender import MODEL_VERSION, HybridRecommender
from models.signals import Signal, signal_of
from models.synth import Clickstream

__all__ = [
    "MODEL_VERSION",
    "CategoryAffinity",
    "Clickstream",
    "CoOccurrence",
    "DecayedPopularity",
    "HybridRecommender",
    "Signal",
    "UserProfile",
    "signal_of",
]
