"""Learning: online recommenders and their state. Pure: no Kafka, Redis or network imports."""

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
