"""The set metrics of molgfn.chem.metrics against values worked out by hand on small sets, and IntDiv and
novelty against independent implementations of the MOSES definitions (Polykovskiy et al. 2020)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import AllChem, rdFingerprintGenerator

from molgfn.chem import metrics

MODE_FP = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)

# a shared example: drug-like molecules, a duplicate written two ways, an invalid SMILES
EXAMPLE = [
    "CC(=O)Nc1ccc(O)cc1",
    "CC(=O)Nc1ccc(OC)cc1",
    "c1ccccc1C(=O)O",
    "OC(=O)c1ccccc1",  # the same molecule as the one before
    "CN1CCN(CC1)c1ccc(F)cc1",
    "Cc1ncc(n1CCO)[N+](=O)[O-]",
    "CCCCCCCCO",
    "c1ccc2[nH]ccc2c1",
    "O=C1NC(=O)C(N1)(c1ccccc1)c1ccccc1",
    "not a smiles",
]
TRAIN = ["CC(=O)Nc1ccc(O)cc1", "c1ccc2[nH]ccc2c1", "CCO"]


def tanimoto(a: str, b: str) -> float:
    return DataStructs.TanimotoSimilarity(
        MODE_FP.GetFingerprint(Chem.MolFromSmiles(a)), MODE_FP.GetFingerprint(Chem.MolFromSmiles(b))
    )


def test_validity_counts_the_parsable_smiles():
    assert metrics.validity(["CCO", "OCC", "C1CC", "c1ccccc1"]) == 3 / 4
    assert metrics.validity([]) == 0.0


def test_uniqueness_treats_differently_written_duplicates_as_one():
    # valid: CCO, OCC (= CCO), c1ccccc1 -> 2 unique of 3 valid; the invalid one is not counted
    assert metrics.uniqueness(["CCO", "OCC", "c1ccccc1", "C1CC"]) == pytest.approx(2 / 3)
    assert metrics.uniqueness(["xx"]) == 0.0


def test_novelty_is_the_fraction_of_unique_molecules_absent_from_the_reference():
    # unique {CCO, c1ccccc1, CCN}; CCO is in the reference (written OCC there) -> 2/3
    assert metrics.novelty(["CCO", "OCC", "c1ccccc1", "CCN", "xx"], ["OCC"]) == pytest.approx(2 / 3)
    assert metrics.novelty(["xx"], ["CCO"]) == 0.0


def test_top_k_mean_takes_the_best_reward_of_each_unique_molecule():
    smiles = ["CCO", "OCC", "c1ccccc1", "CCN"]
    reward = [0.5, 0.9, 0.3, 0.7]  # CCO best 0.9 (as OCC), benzene 0.3, CCN 0.7
    assert metrics.top_k_mean(smiles, reward, 1) == pytest.approx(0.9)
    assert metrics.top_k_mean(smiles, reward, 2) == pytest.approx((0.9 + 0.7) / 2)
    assert metrics.top_k_mean(smiles, reward, 10) == pytest.approx((0.9 + 0.7 + 0.3) / 3)
    assert math.isnan(metrics.top_k_mean([], [], 10))


def test_modes_merge_near_identical_molecules_and_respect_the_threshold():
    butyl, pentyl, pyridine = "CCCCc1ccccc1", "CCCCCc1ccccc1", "c1ccncc1"
    assert 0.7 <= tanimoto(butyl, pentyl) < 1.0  # near-identical: one mode
    assert tanimoto(butyl, pyridine) < 0.7
    smiles = [pentyl, butyl, pyridine, "CCO", "c1ccccc1CCCC"]
    reward = [0.9, 1.0, 0.8, 0.4, 0.2]  # CCO below the threshold; the last is butylbenzene again
    assert metrics.modes(smiles, reward, threshold=0.5) == [
        Chem.CanonSmiles(butyl),
        Chem.CanonSmiles(pyridine),
    ]
    # raise the threshold above pyridine's reward: only the best mode is left
    assert metrics.modes(smiles, reward, threshold=0.85) == [Chem.CanonSmiles(butyl)]
    # with a stricter similarity cut-off, the two alkylbenzenes are two modes
    assert len(metrics.modes(smiles, reward, threshold=0.5, max_similarity=0.8)) == 2
    assert len(metrics.modes(smiles, reward, threshold=0.5, max_similarity=0.9)) == 3


def test_circles_keep_molecules_farther_than_the_radius_from_every_kept_one():
    butyl, pentyl, pyridine = "CCCCc1ccccc1", "CCCCCc1ccccc1", "c1ccncc1"
    assert 1 - tanimoto(butyl, pentyl) < 0.75  # inside butylbenzene's circle
    assert 1 - tanimoto(butyl, pyridine) > 0.75  # outside it
    assert metrics.circles([butyl, pentyl, pyridine, "c1ccccc1CCCC", "xx"]) == 2
    # in another order the greedy pass keeps pentylbenzene, not butylbenzene: still 2 circles
    assert metrics.circles([pentyl, butyl, pyridine]) == 2
    assert metrics.circles([butyl, pentyl], distance=0.1) == 2  # distance 0.15 > 0.1


def test_scaffolds_count_the_acyclic_scaffold_once():
    smiles = ["c1ccccc1CC", "CCCc1ccccc1", "CCO", "CCCC", "NC1CCCCC1", "xx"]
    # benzene (twice), '' (the two acyclic molecules), cyclohexane -> 3
    assert metrics.scaffolds(smiles) == 3
    assert metrics.murcko(Chem.MolFromSmiles("CCO")) == ""
    assert metrics.murcko(Chem.MolFromSmiles("OCc1ccc(cc1)C1CC1")) == "c1ccc(C2CC2)cc1"


def test_pearson_matches_the_hand_computed_coefficient():
    # x - mean = (-1, 0, 1); y - mean = (-7/3, -1/3, 8/3); r = 5 / sqrt(2 * 114/9) = 15 / sqrt(228)
    assert metrics.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(15 / math.sqrt(228), abs=1e-12)
    assert math.isnan(metrics.pearson([1, 1, 1], [1, 2, 3]))
    assert math.isnan(metrics.pearson([1], [2]))


def test_internal_diversity_of_two_molecules_by_hand():
    a, b = "CC(=O)Nc1ccc(O)cc1", "c1ccncc1"
    fa, fb = (AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(s), 2, nBits=1024) for s in (a, b))
    t = DataStructs.TanimotoSimilarity(fa, fb)
    # each molecule: mean over j (itself, T=1, and the other) of T^p -> IntDiv_p = 1 - ((1 + t^p) / 2)^(1/p)
    assert metrics.internal_diversity([a, b], p=1) == pytest.approx((1 - t) / 2, abs=1e-12)
    assert metrics.internal_diversity([a, b], p=2) == pytest.approx(1 - math.sqrt((1 + t * t) / 2), abs=1e-12)
    assert metrics.internal_diversity([a], p=1) == 0.0


def moses_internal_diversity(smiles: list[str], p: int) -> float:
    """MOSES ``internal_diversity`` (moses/metrics/metrics.py) written out with RDKit: Morgan radius 2,
    1024 bits, IntDiv_p = 1 - mean_i (mean_j T_ij^p)^(1/p), j over all molecules including i."""
    fps = [AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(s), 2, nBits=1024) for s in smiles]
    per_molecule = [
        np.mean(np.array(DataStructs.BulkTanimotoSimilarity(fp, fps)) ** p) ** (1.0 / p) for fp in fps
    ]
    return 1.0 - float(np.mean(per_molecule))


def moses_novelty(smiles: list[str], train: list[str]) -> float:
    """MOSES ``novelty``: |unique valid canonical generated − train| / |unique valid canonical generated|."""
    generated = {Chem.MolToSmiles(m) for m in map(Chem.MolFromSmiles, smiles) if m is not None}
    return len(generated - set(train)) / len(generated)


def test_internal_diversity_and_novelty_agree_with_the_moses_definitions():
    unique = list(dict.fromkeys(c for c in metrics.canonical(EXAMPLE) if c is not None))
    assert len(unique) == 8
    train = [Chem.CanonSmiles(s) for s in TRAIN]  # MOSES expects a canonical training set
    for p in (1, 2):
        assert metrics.internal_diversity(unique, p=p) == pytest.approx(
            moses_internal_diversity(unique, p), abs=1e-9
        )
    assert metrics.novelty(EXAMPLE, train) == pytest.approx(moses_novelty(EXAMPLE, train), abs=1e-12)
    assert metrics.novelty(EXAMPLE, train) == pytest.approx(6 / 8)
    reward = np.linspace(0.1, 1.0, len(EXAMPLE))
    summary = metrics.set_metrics(EXAMPLE, reward, reference=TRAIN, mode_threshold=0.5)
    assert summary["intdiv1"] == pytest.approx(moses_internal_diversity(unique, 1), abs=1e-9)
    assert summary["intdiv2"] == pytest.approx(moses_internal_diversity(unique, 2), abs=1e-9)
    assert summary["novelty"] == pytest.approx(6 / 8)


def test_set_metrics_agrees_with_the_single_metrics():
    reward = np.linspace(0.1, 1.0, len(EXAMPLE))
    summary = metrics.set_metrics(EXAMPLE, reward, reference=TRAIN, mode_threshold=0.5, top_ks=(1, 3))
    assert summary["n"] == len(EXAMPLE)
    assert summary["validity"] == pytest.approx(9 / 10)
    assert summary["uniqueness"] == pytest.approx(8 / 9)
    assert summary["modes"] == len(metrics.modes(EXAMPLE, reward, threshold=0.5))
    assert summary["circles"] == metrics.circles(EXAMPLE)
    assert summary["scaffolds"] == metrics.scaffolds(EXAMPLE)
    assert summary["top1_reward"] == pytest.approx(reward[8])  # the invalid last one does not count
    assert summary["top3_reward"] == pytest.approx(metrics.top_k_mean(EXAMPLE, reward, 3))
    assert "novelty" not in metrics.set_metrics(EXAMPLE, reward)
