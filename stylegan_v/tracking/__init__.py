"""MLflow tracking of training runs (rank 0, resumable, offline-tolerant) and cost accounting in GPU-days.

Imports no other stage of the package; MLflow itself is imported only when a tracker connects.
"""

from __future__ import annotations

from stylegan_v.tracking.config import TrackingConfig
from stylegan_v.tracking.cost import CostMeter, cost_metrics, sacct_cost
from stylegan_v.tracking.records import RunNotInStoreError, TrackingAuthError, flatten, run_id_of
from stylegan_v.tracking.run import NullTracker, RunTracker

__all__ = ["CostMeter", "cost_metrics", "NullTracker", "RunNotInStoreError", "RunTracker", "TrackingAuthError", "TrackingConfig", "flatten", "run_id_of", "sacct_cost"]
