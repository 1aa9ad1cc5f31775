"""The learned proxy: an activity predictor trained on an assay table, used as a reward component.

Public API::

    table, report = load_assay_table("data/targets/CHEMBL234_Ki.csv")
    proxy, metrics = train_proxy(table, model="auto", split="scaffold", seed=0, ensemble=3, report=report)
    proxy.save("models/my_proxy.pt")
    proxy = Proxy.load(DEFAULT_PROXY)
    mean, std = proxy.predict(["CCOc1ccccc1N1CCN(CCCCNC(=O)c2ccccc2)CC1"])
"""

from __future__ import annotations

import importlib
from typing import Any

# the proxy shipped with molgfn (see models/README.md for its target, command and metrics)
from molgfn.resources import DEFAULT_PROXY

# the rest loads torch and RDKit: imported on first use
_LAZY = {
    "LoadReport": "molgfn.proxy.data",
    "load_assay_table": "molgfn.proxy.data",
    "standardize_smiles": "molgfn.proxy.data",
    "Proxy": "molgfn.proxy.model",
    "regression_metrics": "molgfn.proxy.split",
    "split_indices": "molgfn.proxy.split",
    "metrics_table": "molgfn.proxy.train",
    "train_proxy": "molgfn.proxy.train",
}

__all__ = [
    "DEFAULT_PROXY",
    "LoadReport",
    "Proxy",
    "load_assay_table",
    "metrics_table",
    "regression_metrics",
    "split_indices",
    "standardize_smiles",
    "train_proxy",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'molgfn.proxy' has no attribute {name!r}")
