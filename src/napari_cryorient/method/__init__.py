"""The method's steps, each a job (a generator of :class:`~napari_cryorient.engine.jobs.Progress`
that returns a typed result), composed by the CLI, the widgets and the benchmarks.

* :func:`recover_poses` — features → recovery → ambiguity → refinement (no truth);
* :func:`evaluate_poses`, :func:`score_map` — scoring against a truth (simulations);
* :func:`run_demo` — the whole method on a simulation, outputs written.
"""

from .demo import DemoConfig, load_demo_volume, run_demo
from .evaluate import MapScore, PoseMetrics, evaluate_poses, random_pose_baseline, score_map
from .recover import PoseRecovery, RecoverySettings, recover_poses

__all__ = [
    "DemoConfig",
    "MapScore",
    "PoseMetrics",
    "PoseRecovery",
    "RecoverySettings",
    "evaluate_poses",
    "load_demo_volume",
    "random_pose_baseline",
    "recover_poses",
    "run_demo",
    "score_map",
]
