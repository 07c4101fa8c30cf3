"""Neural ODEs/SDEs regularized by their solver's own heuristics (ERNODE, SRNODE, local variants) on torchdiffeq.

Importing the package registers the instrumented solvers ``dopri5_reg`` and ``bosh3_reg`` in torchdiffeq's table.
"""

from dynamics.node.regularizers import REGULARIZERS, CoefSchedule, RegSpec
from dynamics.node.solve import SOLVER_METHODS, CountingFunc, SolverSettings, solve
from dynamics.node.solvers import INSTRUMENTED_SOLVERS, InstrumentedBosh3, InstrumentedDopri5, StepRecorder
from dynamics.node.types import SolveOutput, SolveStats

__all__ = [
    "INSTRUMENTED_SOLVERS",
    "REGULARIZERS",
    "SOLVER_METHODS",
    "CoefSchedule",
    "CountingFunc",
    "InstrumentedBosh3",
    "InstrumentedDopri5",
    "RegSpec",
    "SolveOutput",
    "SolveStats",
    "SolverSettings",
    "StepRecorder",
    "solve",
]
