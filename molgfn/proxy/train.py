"""Training a proxy: split, fit an ensemble of each model family, measure, choose, package.

Every family learns from the same train part and is measured on the same valid and test parts, so
the metrics table compares like with like. The GNN's early stopping uses an inner hold-out carved from
the train part (10 %, same split kind), not the valid part: picking epochs on the valid part made the
GNN's validation RMSE optimistic and let ``auto`` choose it where the forest was better on test
(thrombin, CHEMBL204: valid 0.94 vs 0.96 but test 1.11 vs 0.96). ``model="auto"`` keeps the family
with the lowest validation RMSE (the test part is never used for a decision) and still reports test
metrics for all families.
"""

from __future__ import annotations

import copy
import datetime as dt
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import rdkit
import torch
from tqdm.auto import tqdm

from molgfn import __version__
from molgfn.proxy.data import LoadReport
from molgfn.proxy.featurize import GraphBatch, collate_graphs, mol_to_graph, morgan_counts, parse_smiles
from molgfn.proxy.model import Proxy
from molgfn.proxy.nets import DEFAULT_HYPERPARAMETERS, FAMILIES, build_network, fit_forest
from molgfn.proxy.options import MODELS
from molgfn.proxy.split import SPLITS, regression_metrics, split_indices

MIN_MOLECULES = 30


class _Inputs:
    """All molecules' features of one family, sliceable by index arrays into model inputs."""

    def __init__(self, family: str, mols: list) -> None:
        self.family = family
        if family == "gnn":
            self.graphs = [mol_to_graph(m) for m in mols]
        else:
            self.fingerprints = torch.from_numpy(morgan_counts(mols))

    def take(self, index: np.ndarray) -> GraphBatch | torch.Tensor:
        if self.family == "gnn":
            return collate_graphs([self.graphs[i] for i in index])
        return self.fingerprints[torch.from_numpy(np.asarray(index))]


@torch.no_grad()
def _predict(net: torch.nn.Module, inputs: _Inputs, index: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Predictions of one network on molecules ``index``; a forest's per-tree outputs are averaged."""
    net.eval()
    out = []
    for start in range(0, len(index), batch_size):
        pred = net(inputs.take(index[start : start + batch_size])).double()
        out.append((pred.mean(dim=1) if pred.ndim == 2 else pred).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _fit_member(
    family: str,
    hp: dict,
    inputs: _Inputs,
    y: torch.Tensor,
    parts: dict[str, np.ndarray],
    seed: int,
    on_epoch: Callable[[float], None],
) -> tuple[torch.nn.Module, int]:
    """Fit one network with Adam and MSE on standardised labels on ``parts["fit"]``; keep the weights of
    the epoch with the best RMSE on ``parts["stop"]`` (early stopping after ``patience`` epochs without
    improvement). Both parts come from the train part: the valid part stays unseen, so it can judge
    this network against the forest without the optimism of having picked the epoch on it."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_network(family, hp)
    optimizer = torch.optim.Adam(net.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    y_stop = y[parts["stop"]].numpy()
    best_rmse, best_state, best_epoch, stale = np.inf, None, 0, 0
    for epoch in range(hp["max_epochs"]):
        net.train()
        order = rng.permutation(parts["fit"])
        for start in range(0, len(order), hp["batch_size"]):
            index = order[start : start + hp["batch_size"]]
            if len(index) < 2:  # batch norm needs two samples
                continue
            loss = torch.nn.functional.mse_loss(net(inputs.take(index)), y[index])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
        rmse = float(np.sqrt(np.mean((_predict(net, inputs, parts["stop"]) - y_stop) ** 2)))
        on_epoch(rmse)
        if rmse < best_rmse - 1e-4:
            best_rmse, best_state, best_epoch, stale = rmse, copy.deepcopy(net.state_dict()), epoch + 1, 0
        else:
            stale += 1
            if stale >= hp["patience"]:
                break
    net.load_state_dict(best_state)
    return net.eval(), best_epoch


def _check_args(df: pd.DataFrame, model: str, split: str, seed: int, ensemble: int) -> None:
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer; got {seed!r}")
    if not isinstance(ensemble, (int, np.integer)) or isinstance(ensemble, bool) or not 1 <= ensemble <= 20:
        raise ValueError(f"ensemble must be an integer from 1 to 20; got {ensemble!r}")
    missing = {"smiles", "label"} - set(df.columns)
    if missing:
        raise ValueError(
            f"df must have columns 'smiles' and 'label' (from load_assay_table); missing {sorted(missing)}"
        )
    if len(df) < MIN_MOLECULES:
        raise ValueError(f"df must hold at least {MIN_MOLECULES} molecules to split and train; got {len(df)}")
    if not np.all(np.isfinite(df["label"].to_numpy(dtype=float))):
        raise ValueError("df['label'] must be finite numbers")


def train_proxy(
    df: pd.DataFrame,
    model: str = "auto",
    split: str = "scaffold",
    seed: int = 0,
    ensemble: int = 3,
    progress: bool = True,
    report: LoadReport | None = None,
    hyperparameters: dict[str, dict] | None = None,
) -> tuple[Proxy, dict]:
    """Train a proxy on a tidy table (``smiles``, ``label``) such as :func:`load_assay_table` returns.

    Args:
        df: one row per molecule, columns ``smiles`` and ``label``.
        model: ``gnn``, ``fp`` or ``auto`` (train both, keep the lower validation RMSE).
        split: ``scaffold`` (Bemis–Murcko, default) or ``random``; 80/10/10 train/valid/test.
        seed: seeds the split and the networks; the same seed gives the same proxy on one machine.
        ensemble: GNN ensemble members; the GNN proxy's spread is their standard deviation. The ``fp``
            random forest is an ensemble of its own: its spread is the standard deviation over its trees.
        progress: show a tqdm progress bar (one tick per epoch).
        report: the load report, recorded in the metadata (file name, hash, columns, units, counts).
        hyperparameters: per-family overrides of :data:`molgfn.proxy.nets.DEFAULT_HYPERPARAMETERS`.

    Returns:
        ``(proxy, metrics)``; ``metrics`` holds ``chosen``, and per family ``valid`` and ``test`` metric
        dicts (rmse, mae, r2, spearman, n), ``seconds``, and ``epochs`` (best epoch of each GNN member)
        or ``trees``.
    """
    _check_args(df, model, split, seed, ensemble)
    started = time.perf_counter()
    hyperparameters = hyperparameters or {}
    unknown = set(hyperparameters) - set(FAMILIES)
    if unknown:
        raise ValueError(f"hyperparameters keys must be model families {FAMILIES}; got {sorted(unknown)}")
    hps = {f: {**DEFAULT_HYPERPARAMETERS[f], **hyperparameters.get(f, {})} for f in FAMILIES}
    families = list(FAMILIES) if model == "auto" else [model]

    smiles = df["smiles"].astype(str).tolist()
    labels = df["label"].to_numpy(dtype=float)
    mols = [parse_smiles(s, standardize=False) for s in smiles]
    bad = [s for s, m in zip(smiles, mols) if m is None]
    if bad:
        raise ValueError(f"df['smiles'] holds {len(bad)} SMILES RDKit cannot parse, e.g. {bad[0]!r}")
    parts = split_indices(smiles, split, seed)
    if min(len(p) for p in parts.values()) == 0:
        raise ValueError(f"the {split} split left an empty part ({ {k: len(v) for k, v in parts.items()} })")
    # GNN early stopping uses an inner hold-out of the train part (same split kind), never the valid part
    inner = split_indices([smiles[i] for i in parts["train"]], split, seed + 1, fractions=(0.9, 0.05, 0.05))
    stop_parts = {
        "fit": parts["train"][inner["train"]],
        "stop": parts["train"][np.sort(np.r_[inner["valid"], inner["test"]])],
    }
    label_mean = float(labels[parts["train"]].mean())
    label_std = float(labels[parts["train"]].std()) or 1.0
    y = torch.tensor((labels - label_mean) / label_std, dtype=torch.float32)

    ticks_of = {"gnn": hps["gnn"]["max_epochs"] * ensemble, "fp": -(-hps["fp"]["trees"] // 10)}
    bar = tqdm(total=sum(ticks_of[f] for f in families), desc="training proxy", disable=not progress)
    results: dict[str, dict] = {}
    members_of: dict[str, list] = {}
    for family in families:
        t0 = time.perf_counter()
        inputs = _Inputs(family, mols)
        members, epochs = [], []
        if family == "fp":
            bar.set_description("fp random forest")
            x_train = inputs.fingerprints[parts["train"]].numpy()
            forest = fit_forest(x_train, y[parts["train"]].numpy(), hps["fp"], seed, lambda n: bar.update(1))
            members.append(forest.eval())
        for k in range(ensemble if family == "gnn" else 0):
            bar.set_description(f"{family} {k + 1}/{ensemble}")
            ticks = [0]

            def on_epoch(rmse: float, ticks: list = ticks) -> None:
                ticks[0] += 1
                bar.update(1)
                bar.set_postfix(stop_rmse=f"{rmse * label_std:.3f}")

            net, best_epoch = _fit_member(
                family, hps[family], inputs, y, stop_parts, seed * 1000 + k, on_epoch
            )
            bar.update(hps[family]["max_epochs"] - ticks[0])  # early stop: skip the unused ticks
            members.append(net)
            epochs.append(best_epoch)
        entry: dict = (
            {"epochs": epochs, "n_fit": len(stop_parts["fit"]), "n_stop": len(stop_parts["stop"])}
            if family == "gnn"
            else {"trees": hps["fp"]["trees"], "n_fit": len(parts["train"])}
        )
        for part in ("valid", "test"):
            pred = (
                np.mean([_predict(m, inputs, parts[part]) for m in members], axis=0) * label_std + label_mean
            )
            entry[part] = regression_metrics(labels[parts[part]], pred)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        results[family] = entry
        members_of[family] = members
    bar.close()

    chosen = min(families, key=lambda f: results[f]["valid"]["rmse"])
    metrics = {"chosen": chosen, "selection": "lowest validation RMSE", "families": results}
    metadata = {
        "model_family": chosen,
        "model_requested": model,
        "ensemble": ensemble if chosen == "gnn" else hps["fp"]["trees"],
        "spread": "std over GNN ensemble members" if chosen == "gnn" else "std over random-forest trees",
        "split": {"kind": split, "seed": seed, "fractions": [0.8, 0.1, 0.1]}
        | {f"n_{p}": int(len(v)) for p, v in parts.items()},
        "metrics": metrics,
        "label_mean": label_mean,
        "label_std": label_std,
        "n_molecules": len(smiles),
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "training_seconds": round(time.perf_counter() - started, 1),
        "molgfn_version": __version__,
        "torch_version": torch.__version__,
        "rdkit_version": rdkit.__version__,
        "python_version": platform.python_version(),
        "featurization": {"gnn": "atom codes: element, degree, formal charge, aromatic, hybridisation, H count, "
                          "ring; bond type, ring", "fp": "Morgan radius 2, 2048 bits, log1p counts"},
    }  # fmt: skip
    if report is not None:
        metadata.update(
            {
                "data_file": Path(report.path).name,
                "data_sha256": report.sha256,
                "data_format": report.file_format,
                "columns": report.columns,
                "smiles_col": report.smiles_col,
                "label_col": report.label_col,
                "units": report.units,
                "label": "pK = -log10(molar)"
                if report.units not in (None, "p")
                else f"{report.label_col} as given",
                "load_report": report.counts(),
            }
        )
    split_names = np.empty(len(smiles), dtype=object)
    for part, index in parts.items():
        split_names[index] = part
    proxy = Proxy(
        family=chosen,
        hyperparameters=hps[chosen],
        members=members_of[chosen],
        label_mean=label_mean,
        label_std=label_std,
        metadata=metadata,
        train_smiles=smiles,
        train_labels=labels,
        data_split=split_names.tolist(),
    )
    return proxy, metrics


def metrics_table(metrics: dict) -> str:
    """The held-out metrics as a Markdown table: one row per family, the chosen one marked."""
    lines = [
        "| model | chosen | valid RMSE | test RMSE | test MAE | test R² | test Spearman | n test | time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for family, entry in metrics["families"].items():
        v, t = entry["valid"], entry["test"]
        mark = "yes" if family == metrics["chosen"] else ""
        lines.append(
            f"| {family} | {mark} | {v['rmse']:.3f} | {t['rmse']:.3f} | {t['mae']:.3f} | {t['r2']:.3f} | "
            f"{t['spearman']:.3f} | {t['n']} | {entry['seconds']:.0f} |"
        )
    return "\n".join(lines)
