"""The simulator and capacity planner around the router.

A SimPy harness replays workloads (generated, or traces) through ``router.pool.Pool``
and measures wasted fast hours, downgrades, waits and cost; sweeps run grids of such
runs and the planner searches for the cheapest fleet that meets targets. Rule IDs
in the docstrings refer to ``docs/rules.md``.
"""

# First: the simulator's loop is compiled with the router's core (``make compile``);
# importing ``router.compiled`` before it makes BYOA_PURE=1 load it from its source.
from router import compiled as _compiled  # noqa: F401
