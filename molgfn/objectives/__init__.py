"""GFlowNet training objectives, one module each, behind :class:`~molgfn.objectives.base.Objective`."""

from molgfn.objectives.base import Objective
from molgfn.objectives.db import DetailedBalance, ForwardLookingDB
from molgfn.objectives.entppo import EntPPO
from molgfn.objectives.rlgfn import RLGFN
from molgfn.objectives.subtb import SubTrajectoryBalance
from molgfn.objectives.tb import TrajectoryBalance

OBJECTIVES: dict[str, type[Objective]] = {
    "tb": TrajectoryBalance,
    "db": DetailedBalance,
    "subtb": SubTrajectoryBalance,
    "fldb": ForwardLookingDB,
    "rlgfn": RLGFN,
    "entppo": EntPPO,
}

__all__ = [
    "OBJECTIVES",
    "Objective",
    "TrajectoryBalance",
    "DetailedBalance",
    "ForwardLookingDB",
    "SubTrajectoryBalance",
]
