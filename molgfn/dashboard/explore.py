"""Analyses of a run's sampled molecules, for the dashboard: properties, novelty, nearest training
neighbours, fragments, diversity and modes over training, and a 2D chemical-space map.

All functions take plain lists / DataFrames (no Streamlit); the dashboard caches their results per run
and step window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from molgfn.candidates.reference import ReferenceSet
from molgfn.chem.metrics import fingerprint_matrix, internal_diversities
from molgfn.chem.molecules import MolBatch
from molgfn.reward.properties import RUN_PROPERTIES

PROPERTIES = RUN_PROPERTIES  # the properties a run records per molecule
PROPERTY_LABELS = {
    "qed": "QED",
    "sa": "SA score",
    "mw": "MW (Da)",
    "logp": "logP",
    "tpsa": "TPSA (Å²)",
    "hbd": "HBD",
    "hba": "HBA",
    "alerts": "alerts (PAINS, Brenk, NIH)",
    "reward": "reward",
}
_MODE_FP = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)


def canonical(smiles: Sequence[str]) -> list[str | None]:
    batch = MolBatch.parse(list(smiles))
    return [Chem.MolToSmiles(m) if m is not None else None for m in batch.mols]


def molecule_properties(
    smiles: Sequence[str], names: Sequence[str] = PROPERTIES, recorded: pd.DataFrame | None = None
) -> pd.DataFrame:
    """QED, SA score, molecular weight, Crippen logP, TPSA, H-bond donors and acceptors (the export's
    definitions, :mod:`molgfn.reward.properties`) of each molecule, once per distinct SMILES; NaN for an
    invalid one. ``recorded``: values a run recorded (:meth:`RunStore.read_properties`), taken as they are;
    only the other molecules are computed. Index: position in ``smiles``."""
    from molgfn.reward.properties import compute_properties

    smiles = list(smiles)
    distinct = list(dict.fromkeys(smiles))
    values, known = _recorded_values(distinct, names, recorded)
    todo = np.nonzero(~known.all(axis=1))[0]  # molecules with a property not recorded
    if len(todo):
        wanted = [n for n, k in zip(names, known[todo].all(axis=0)) if not k]
        computed = compute_properties(MolBatch.parse([distinct[i] for i in todo]), wanted)
        for name in wanted:
            values[name][todo] = computed[name]
    position = {s: i for i, s in enumerate(distinct)}
    index = np.fromiter((position[s] for s in smiles), dtype=np.int64, count=len(smiles))
    return pd.DataFrame({name: v[index] if len(index) else v[:0] for name, v in values.items()})


def _recorded_values(
    distinct: list[str], names: Sequence[str], recorded: pd.DataFrame | None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Recorded values of ``names`` for ``distinct`` SMILES (NaN where missing) and a (molecules, names)
    mask of those recorded. A molecule recorded without a value (invalid: all NaN) counts as recorded."""
    values = {name: np.full(len(distinct), np.nan) for name in names}
    known = np.zeros((len(distinct), len(names)), dtype=bool)
    if recorded is None or not len(recorded):
        return values, known
    rows = recorded.drop_duplicates("smiles").set_index("smiles").reindex(distinct)
    present = rows.index.isin(recorded["smiles"])
    for j, name in enumerate(names):
        if name in rows:
            values[name] = rows[name].to_numpy(dtype=float)
            known[:, j] = present
    return values, known


def unrecorded(
    smiles: Sequence[str], recorded: pd.DataFrame | None, names: Sequence[str] = PROPERTIES
) -> int:
    """How many distinct molecules of ``smiles`` lack a recorded value of one of ``names``."""
    distinct = list(dict.fromkeys(smiles))
    return int((~_recorded_values(distinct, names, recorded)[1].all(axis=1)).sum())


def molecule_alerts(smiles: str) -> list[str]:
    """The structural alerts one molecule matches, as 'catalogue: description' (PAINS, Brenk, NIH)."""
    from molgfn.chem.molecules import alert_descriptions

    mol = Chem.MolFromSmiles(smiles)
    return alert_descriptions(mol) if mol is not None else []


def activity_columns(smiles: Sequence[str], proxy: Any, reference: ReferenceSet | None) -> pd.DataFrame:
    """Predicted pK and spread (``proxy.predict``), nearest training similarity and the applicability flag
    (:func:`molgfn.candidates.export.in_domain`) of each molecule, once per distinct SMILES; NaN / False
    for an invalid one. Index: position in ``smiles``."""
    from molgfn.candidates.export import in_domain

    smiles = list(smiles)
    distinct = list(dict.fromkeys(smiles))
    batch = MolBatch.parse(distinct)
    valid = [s for s, m in zip(distinct, batch.mols) if m is not None]
    mean = np.full(len(distinct), np.nan)
    spread = np.full(len(distinct), np.nan)
    similarity = np.full(len(distinct), np.nan)
    rows = np.array([i for i, m in enumerate(batch.mols) if m is not None], dtype=np.int64)
    if valid:
        predicted = proxy.predict(valid)
        mean[rows] = np.asarray(predicted[0], dtype=float)
        spread[rows] = np.asarray(predicted[1], dtype=float)
        if reference is not None:
            similarity[rows] = reference.nearest([batch.mols[i] for i in rows])[1]
    position = {s: i for i, s in enumerate(distinct)}
    index = np.fromiter((position[s] for s in smiles), dtype=np.int64, count=len(smiles))
    columns = {"proxy_mean": mean, "proxy_std": spread, "nearest_train_similarity": similarity}
    frame = pd.DataFrame({k: v[index] for k, v in columns.items()})
    frame["in_domain"] = in_domain(frame["nearest_train_similarity"], frame["proxy_std"])
    return frame


def nearest_reference(reference: ReferenceSet, smiles: str) -> tuple[str | None, float]:
    """The most similar molecule of a :class:`molgfn.candidates.reference.ReferenceSet` (the proxy's training set)
    to ``smiles`` and their Tanimoto similarity (Morgan radius 2, 2048 bits); (None, NaN) if invalid."""
    names, similarity = reference.nearest(MolBatch.parse([smiles]).mols)
    return (names[0] or None), float(similarity[0])


def molecule_view(molecules: pd.DataFrame, unique: bool = True) -> pd.DataFrame:
    """The molecules table to browse: with ``unique``, one row per SMILES (its first sample, with
    ``samples``: how often it was sampled); else every sample (``samples`` = 1)."""
    if not unique:
        return molecules.assign(samples=1).reset_index(drop=True)
    counts = molecules["smiles"].value_counts()
    first = molecules.drop_duplicates("smiles", keep="first").reset_index(drop=True)
    return first.assign(samples=first["smiles"].map(counts).to_numpy())


def brics_fragments(smiles: str, vocabulary: Sequence[str] = ()) -> pd.DataFrame:
    """The BRICS fragments of a molecule (the decomposition the default vocabulary was mined with),
    each marked whether it is in ``vocabulary`` (fragment SMILES with ``*`` stems). Runs do not store the
    build tree of a sampled molecule, so this is a reconstruction, not a record."""
    from molgfn.chem.mining import brics_fragments as _brics

    found = _brics(smiles) or set()
    vocab = set()
    for entry in vocabulary:
        mol = Chem.MolFromSmiles(entry)
        if mol is not None:
            for atom in mol.GetAtoms():
                if atom.GetAtomicNum() == 0:
                    atom.SetIsotope(0)
            vocab.add(Chem.MolToSmiles(mol))
    rows = [{"fragment": f, "in_vocabulary": f in vocab} for f in sorted(found)]
    return pd.DataFrame(rows, columns=["fragment", "in_vocabulary"])


def step_windows(last_step: int, n_windows: int = 20) -> list[tuple[int, int]]:
    """``n_windows`` consecutive windows ``(first, last)`` of whole steps covering 1..last_step; the width
    is a round number so that finished windows stay the same while a run grows (cacheable)."""
    if last_step < 1:
        return []
    width = max(1, int(np.ceil(last_step / n_windows)))
    nice = [1, 2, 5]
    scale = 1
    while True:
        choice = next((n * scale for n in nice if n * scale >= width), None)
        if choice is not None:
            width = choice
            break
        scale *= 10
    return [(start, min(start + width - 1, last_step)) for start in range(1, last_step + 1, width)]


def window_diversity(
    smiles: Sequence[str], reward: Sequence[float], max_molecules: int = 2000
) -> dict[str, float]:
    """Diversity of one window's samples: molecules, unique fraction, IntDiv1 (MOSES; of at most
    ``max_molecules`` unique molecules, the best by reward) and mean reward."""
    frame = pd.DataFrame({"smiles": list(smiles), "reward": np.asarray(reward, dtype=float)})
    n = len(frame)
    unique = frame.sort_values("reward", ascending=False).drop_duplicates("smiles").head(max_molecules)
    mols = [m for m in MolBatch.parse(list(unique["smiles"])).mols if m is not None]
    intdiv = internal_diversities(fingerprint_matrix(mols), (1,))[1] if len(mols) > 1 else float("nan")
    return {
        "molecules": float(n),
        "unique_fraction": float(frame["smiles"].nunique() / n) if n else float("nan"),
        "intdiv": float(intdiv),
        "reward_mean": float(frame["reward"].mean()) if n else float("nan"),
    }


def modes_discovered(
    smiles: Sequence[str], reward: Sequence[float], threshold: float, max_similarity: float = 0.7
) -> np.ndarray:
    """Online mode discovery, in sampling order: molecule i is a new mode when its reward is ≥
    ``threshold`` and its Tanimoto similarity (Morgan radius 2) to every earlier mode is below
    ``max_similarity``. Returns the cumulative number of modes after each molecule."""
    reward = np.asarray(reward, dtype=float)
    counts = np.zeros(len(reward), dtype=np.int64)
    accepted: list = []
    seen: set[str] = set()
    n = 0
    for i, (s, r) in enumerate(zip(smiles, reward)):
        if r >= threshold and s not in seen:
            seen.add(s)
            mol = Chem.MolFromSmiles(s)
            if mol is not None:
                fp = _MODE_FP.GetFingerprint(mol)
                if not accepted or max(DataStructs.BulkTanimotoSimilarity(fp, accepted)) < max_similarity:
                    accepted.append(fp)
                    n += 1
        counts[i] = n
    return counts


def diversity_over_training(
    molecules: pd.DataFrame,
    steps: pd.DataFrame,
    windows: Sequence[tuple[int, int]],
    mode_threshold: float | None,
    window_cache: dict | None = None,
) -> pd.DataFrame:
    """Per window of steps: trajectories sampled at its end, modes discovered so far (online, see
    :func:`modes_discovered`), and the window's IntDiv, unique fraction and mean reward.

    ``molecules``: step, smiles, reward (sampling order); ``steps``: step, trajectories.
    ``window_cache``: an optional dict reused between calls (finished windows are not recomputed).
    ``mode_threshold`` None skips the modes (NaN; e.g. when the trainer logged them itself)."""
    columns = [
        "first_step",
        "last_step",
        "trajectories",
        "modes",
        "molecules",
        "unique_fraction",
        "intdiv",
        "reward_mean",
    ]
    if molecules.empty or not len(windows):
        return pd.DataFrame(columns=columns)
    cache = window_cache if window_cache is not None else {}
    if mode_threshold is None:
        modes = np.full(len(molecules), np.nan)
    else:
        modes = modes_discovered(list(molecules["smiles"]), molecules["reward"].to_numpy(), mode_threshold)
    mol_steps = molecules["step"].to_numpy()
    traj_of = dict(zip(steps["step"].astype(int), steps["trajectories"].astype(int)))
    rows = []
    for first, last in windows:
        in_window = (mol_steps >= first) & (mol_steps <= last)
        if not in_window.any():
            continue
        key = (first, last, int(in_window.sum()))
        if key not in cache:
            part = molecules.loc[in_window]
            cache[key] = window_diversity(list(part["smiles"]), part["reward"].to_numpy())
        upto = np.nonzero(mol_steps <= last)[0]
        rows.append(
            {
                "first_step": first,
                "last_step": last,
                "trajectories": traj_of.get(last, np.nan),
                "modes": float(modes[upto[-1]]) if len(upto) else 0.0,
                **cache[key],
            }
        )
    return pd.DataFrame(rows, columns=columns)


def chemical_space(
    smiles: Sequence[str], reference_smiles: Sequence[str] = (), max_reference: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 2D map of chemical space: PCA of Morgan fingerprints (radius 2, 1024 bits) fitted on the
    generated and reference molecules together (at most ``max_reference`` reference molecules, drawn at
    random). Returns the coordinates of ``smiles``, those of the reference molecules used, and the
    indices of those in ``reference_smiles`` (NaN rows for invalid SMILES)."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    reference = list(reference_smiles)
    used = np.arange(len(reference))
    if len(reference) > max_reference:
        used = np.sort(rng.choice(len(reference), max_reference, replace=False))
        reference = [reference[i] for i in used]
    gen = MolBatch.parse(list(smiles))
    ref = MolBatch.parse(reference)
    gen_ok = [i for i, m in enumerate(gen.mols) if m is not None]
    ref_ok = [i for i, m in enumerate(ref.mols) if m is not None]
    bits = fingerprint_matrix([gen.mols[i] for i in gen_ok] + [ref.mols[i] for i in ref_ok])
    gen_xy = np.full((len(gen.mols), 2), np.nan)
    ref_xy = np.full((len(ref.mols), 2), np.nan)
    if len(bits) < 3:
        return gen_xy, ref_xy, used
    coords = PCA(n_components=2, random_state=seed).fit_transform(bits)
    gen_xy[gen_ok] = coords[: len(gen_ok)]
    ref_xy[ref_ok] = coords[len(gen_ok) :]
    return gen_xy, ref_xy, used
