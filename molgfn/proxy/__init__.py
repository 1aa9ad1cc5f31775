"""The learned proxy: an activity predictor trained on an assay table, used as a reward component.

Public API::

    table, report = load_assay_table("data/targets/CHEMBL234_Ki.csv")
    proxy, metrics = train_proxy(table, model="auto", split="scaffold", seed=0, ensemble=3, report=report)
    proxy.save("models/my_proxy.pt")
    proxy = Proxy.load(DEFAULT_PROXY)
    mean, std = proxy.predict(["CCOc1ccccc1N1CCN(CCCCNC(=O)c2ccccc2)CC1"])
"""

from pathlib import Path

from molgfn.proxy.data import LoadReport, load_assay_table, standardize_smiles
from molgfn.proxy.model import Proxy
from molgfn.proxy.split import regression_metrics, split_indices
from molgfn.proxy.train import metrics_table, train_proxy

#: The proxy shipped with molgfn (see models/README.md for its target, command and metrics).
DEFAULT_PROXY = Path(__file__).resolve().parents[2] / "models" / "proxy_default.pt"

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
