"""Sibling multi-task methods (DESIGN §7) and the common ``fit`` / ``predict`` interface
that puts them side by side with cross-learning (``cljax compare``).

* ``learned_graph``: multitask SGD with a learned task-graph Laplacian (arXiv 2510.10570).
* ``dual_encoder``: task and shared encoders with group soft-thresholded heads
  (arXiv 2505.24281).
"""

from cljax.methods import _dual_encoder as dual_encoder
from cljax.methods import _learned_graph as learned_graph
from cljax.methods._interface import Adapter as Adapter
from cljax.methods._interface import Fitted as Fitted
from cljax.methods._interface import MultiTaskEstimator as MultiTaskEstimator
from cljax.methods._interface import applies as applies
from cljax.methods._interface import check_task_data as check_task_data
from cljax.methods._interface import cross_validate as cross_validate
from cljax.methods._interface import get_estimator as get_estimator
from cljax.methods._interface import min_samples as min_samples

__all__ = [
    "learned_graph", "dual_encoder",
    "Adapter", "Fitted", "MultiTaskEstimator", "applies", "check_task_data",
    "cross_validate", "get_estimator", "min_samples",
]
