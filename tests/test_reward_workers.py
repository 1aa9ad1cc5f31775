"""reward.workers computes the RDKit components in worker processes: the values must not change."""

from __future__ import annotations

import numpy as np

from molgfn.reward import Reward

SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "c1ccc2c(c1)ccc1ccccc12",
    "O=C(O)C=Cc1ccc(O)c(O)c1",
    "CCN(CC)CCNC(=O)c1ccc(N)cc1",
    "not a smiles",
    "C1CCNCC1",
    "Oc1ccc(N=Nc2ccccc2)cc1O",
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
]


def test_worker_processes_give_the_in_process_values():
    components = [
        {"kind": "qed"},
        {"kind": "sa", "transform": {"kind": "reverse_sigmoid", "low": 2.0, "high": 6.0}},
        {"kind": "mw", "transform": {"kind": "window", "low": 200.0, "high": 500.0}},
        {"kind": "pains"},
    ]
    serial = Reward.from_config({"components": components}).score(SMILES)
    parallel = Reward.from_config({"components": components, "workers": 2}).score(SMILES)
    assert np.array_equal(serial.valid, parallel.valid)
    np.testing.assert_allclose(parallel.score, serial.score, rtol=0, atol=0)
    for name in serial.raw:
        np.testing.assert_allclose(parallel.raw[name], serial.raw[name], rtol=0, atol=0, equal_nan=True)
    assert serial.raw["pains"][SMILES.index("Oc1ccc(N=Nc2ccccc2)cc1O")] == 0.0  # a PAINS hit (catechol azo)
