"""GFlowNet training objectives, one module each, behind :class:`~molgfn.objectives.base.Objective`.

:mod:`molgfn.objectives.registry` lists them (names, flags, options) without importing torch; import a
class from its module (``molgfn.objectives.tb``) or load it with ``OBJECTIVES[name].load()``.
"""

from molgfn.objectives.registry import OBJECTIVES, ObjectiveSpec, objective_spec, register_objective

__all__ = ["OBJECTIVES", "ObjectiveSpec", "objective_spec", "register_objective"]
