"""Per-document heuristic quality filters (Gopher, C4, FineWeb, code, math) as plain Python.

No Beam here: the pipeline's heuristics stage wraps ``apply_heuristics`` in a DoFn.
"""

from gemmaflow.pipeline.heuristics.apply import HeuristicResult, apply_heuristics
from gemmaflow.pipeline.heuristics.config import HeuristicsConfig

__all__ = ["HeuristicResult", "HeuristicsConfig", "apply_heuristics"]
