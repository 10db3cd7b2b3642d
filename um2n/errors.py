"""Exceptions that um2n raises for bad input and failed moves."""

from __future__ import annotations


class UM2NError(Exception):
    """Base class of every um2n error."""


class MeshInputError(UM2NError, ValueError):
    """A mesh file or mesh array that um2n cannot use.

    The message names the file (or array) and what is wrong with it; the CLI prints it
    as one line, without a traceback.
    """


class MonitorError(UM2NError, ValueError):
    """A monitor (array, callable, expression or mesh field) that is not usable."""


class WeightsError(UM2NError, ValueError):
    """A weights file that cannot be loaded into the model."""


class ConvergenceError(UM2NError, RuntimeError):
    """An iterative solver of um2n (Monge-Ampère, a case's Newton method) did not converge,
    or converged to a tangled mesh. The message names the solver and where it stopped."""
