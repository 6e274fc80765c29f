"""The built-in live dashboard (`personalize dashboard`): throughput, freshness, HR@k, drift, variants.

A page with vendored uPlot charts polls ``/api/data``, which a sampler fills from the workers' /metrics
and Redis once a second. Read-only; for a look without Prometheus and Grafana, not instead of them.
May import `engine.store`, `engine.ops` and `schemas`.
"""

from engine.dashboard.app import create_dashboard, default_metrics_urls, serve
from engine.dashboard.sampler import Sampler

__all__ = ["Sampler", "create_dashboard", "default_metrics_urls", "serve"]
