"""A design campaign: rounds of (proxy, generator, batch, labels, report), each phase recorded when it ends.

Round 0 is the start set: the user's assay table, or a batch picked for diversity (MaxMin) among the
start generator's samples and labelled by the oracle. Each later round

1. ``proxy``: trains the proxy ensemble on every label so far (held-out metrics recorded);
2. ``generator``: trains the GFlowNet, warm-started from the previous round's, on the acquisition of
   that proxy combined with the drug-likeness terms;
3. ``select``: samples a pool, drops molecules already in the campaign and those the filters reject,
   and picks the batch by acquisition under the diversity rule; each molecule gets its stable id and
   the proxy's prediction and spread *before* it is labelled;
4. ``label``: sends the batch's unlabelled molecules to the oracle in small pieces, storing each piece's
   labels as they come (the oracle cache keeps what an expensive oracle computed even if this process
   is killed), or, for ``lab``, exports the batch and waits for ``campaign import``;
5. ``report``: best label, top-10 mean, hits, and the proxy's prospective error on the batch.

``campaign run`` after a crash goes on from the last finished phase; a molecule is in the store once,
and a labelled molecule is never sent to the oracle again.
"""

from __future__ import annotations

import math
import re
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from molgfn.campaigns.config import CampaignConfig, campaign_config_from_dict, load_campaign_config
from molgfn.campaigns.store import CampaignStore, molecule_id
from molgfn.config import read_toml
from molgfn.errors import MolgfnError

ROUND_PHASES = ("proxy", "generator", "select", "label", "report")
LABEL_PIECE = 4  # molecules per oracle call while labelling: what a kill can cost, at most
MIN_LABELS = 30  # a proxy needs at least this many labels (molgfn.proxy's minimum)


def canonical(smiles: str) -> str | None:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    return Chem.MolToSmiles(mol) if mol is not None and mol.GetNumAtoms() else None


def new_campaign(
    config: str | Path,
    data: str | Path | None = None,
    campaigns_dir: str | Path = "campaigns",
    campaign_id: str | None = None,
    *,
    smiles_col: str | None = None,
    label_col: str | None = None,
    units: str | None = None,
) -> Campaign:
    """Validate ``config`` (and read ``data``, an assay table), then create the campaign's folder."""
    cfg = load_campaign_config(config)
    start = cfg.campaign.start_size or cfg.campaign.batch_size
    if data is None and start < MIN_LABELS:
        raise MolgfnError(
            f"{config}: campaign.start_size: a campaign from nothing labels at least {MIN_LABELS} molecules "
            f"first, for its first proxy (got {start}; or start from an assay table with --data)"
        )
    table = report = None
    if data is not None:
        from molgfn.proxy.data import load_assay_table

        try:
            table, report = load_assay_table(data, smiles_col=smiles_col, label_col=label_col, units=units)
        except (ValueError, KeyError) as exc:
            raise MolgfnError(f"{data}: {exc}") from None
        if len(table) < MIN_LABELS:
            raise MolgfnError(
                f"{data}: {len(table)} usable molecules; a campaign needs at least {MIN_LABELS}"
            )
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    campaign_id = campaign_id or f"{cfg.campaign.name}-{stamp}"
    if not re.match(r"^[A-Za-z0-9_.-]+$", campaign_id):
        raise MolgfnError(f"--id: use only letters, digits, '_', '.' and '-' (got {campaign_id!r})")
    folder = Path(campaigns_dir) / campaign_id
    if folder.exists():
        raise MolgfnError(f"{folder}: exists")
    folder.mkdir(parents=True)
    store = CampaignStore(folder)
    store.config_path.write_text(cfg.to_toml())
    if table is not None:
        now = time.time()
        rows = [
            {
                "id": molecule_id(0, i),
                "smiles": s,
                "round": 0,
                "source": "data",
                "label": float(v),
                "labelled": now,
            }
            for i, (s, v) in enumerate(zip(table["smiles"], table["label"]))
        ]
        info = {"data": str(Path(data).resolve()), "molecules": len(rows), "dropped": len(report.dropped)}
        store.finish_phase(0, "start", info, molecules=rows)
    store.write_status(state="new", round=0, phase=None)
    store.close()
    return Campaign(folder)


class Campaign:
    """An existing campaign folder: its config, its store, and the phases still to run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        if not (self.path / "campaign.toml").is_file():
            raise MolgfnError(f"{self.path}: no such campaign (no campaign.toml)")
        self.store = CampaignStore(self.path)
        self.cfg: CampaignConfig = campaign_config_from_dict(
            read_toml(self.store.config_path), source=str(self.store.config_path), base_dir=self.path
        )

    @property
    def id(self) -> str:
        return self.path.name

    # ---------------------------------------------------------------------------------------- running
    def run(
        self,
        rounds: int | None = None,
        *,
        progress: bool = True,
        on_phase: Callable[[int, str], None] | None = None,
    ) -> str:
        """Run the phases not yet finished, up to round ``rounds`` (default: the config's). Returns
        ``finished`` or ``waiting`` (a lab batch waits for its results)."""
        target = self.cfg.campaign.rounds if rounds is None else rounds
        if target < 1:
            raise MolgfnError(f"--rounds: must be at least 1 (got {target})")
        store = self.store
        try:
            plan = [
                (0, p) for p in (("report",) if store.phase(0, "start") else ("select", "label", "report"))
            ]
            plan += [(k, p) for k in range(1, target + 1) for p in ROUND_PHASES]
            for round_, phase in plan:
                if store.phase(round_, phase) is not None:
                    continue
                store.write_status(state="running", round=round_, phase=phase, rounds=target)
                if on_phase is not None:
                    on_phase(round_, phase)
                print(f"campaign {self.id}: round {round_}: {phase}", file=sys.stderr, flush=True)
                done = getattr(self, f"_{phase}")(round_, progress)
                if done is False:  # a lab batch waits for its results
                    store.write_status(state="waiting", round=round_, phase=phase, rounds=target)
                    return "waiting"
            store.write_status(state="finished", round=target, phase=None, rounds=target)
            return "finished"
        except BaseException as exc:
            store.write_status(
                state="failed" if isinstance(exc, Exception) else "interrupted", message=str(exc)
            )
            raise
        finally:
            store.close()

    def _labels(self) -> pd.DataFrame:
        return self.store.labelled()

    def _proxy(self, round_: int, progress: bool) -> None:
        from molgfn.proxy import train_proxy

        labelled = self._labels()
        if len(labelled) < MIN_LABELS:
            raise MolgfnError(
                f"round {round_}: {len(labelled)} labels; the proxy needs at least {MIN_LABELS}"
            )
        frame = pd.DataFrame({"smiles": labelled["smiles"], "label": self.cfg.sign * labelled["label"]})
        p = self.cfg.proxy
        try:
            proxy, metrics = train_proxy(
                frame, model=p.model, split=p.split, seed=self.cfg.campaign.seed + round_, ensemble=p.ensemble,
                progress=progress,
            )  # fmt: skip
        except ValueError as exc:
            raise MolgfnError(f"round {round_}: proxy: {exc}") from None
        folder = self.store.round_dir(round_)
        tmp = folder / "proxy.pt.tmp"
        proxy.save(tmp)
        tmp.replace(folder / "proxy.pt")
        chosen = metrics["chosen"]
        self.store.finish_phase(
            round_,
            "proxy",
            {
                "labels": len(frame),
                "model": chosen,
                **{k: metrics["families"][chosen][k] for k in ("valid", "test")},
            },
        )

    def _generator(self, round_: int, progress: bool) -> None:
        from molgfn.campaigns.generator import train_round

        previous = None
        if round_ > 1:
            info = self.store.phase(round_ - 1, "generator")
            previous = Path(info["run"]) if info else None
        labels = self._labels()["label"].tolist()
        folder = self.store.round_dir(round_)
        run = train_round(self.cfg, folder, round_, folder / "proxy.pt", labels, previous, progress=progress)
        self.store.finish_phase(round_, "generator", {"run": str(run), "steps": self.cfg.generator.steps})

    def _pool(self, source: str | Path, n: int, seed: int) -> list[str]:
        """``n`` distinct molecules (canonical) sampled from a generator, none already in the campaign,
        passing the filters."""
        from molgfn.candidates.generate import load_generator

        generator = load_generator(source)
        try:
            table, _ = generator.generate(
                n, unique=True, filters=list(self.cfg.selection.filters) or None, seed=seed
            )
        finally:
            generator.close()
        known = self.store.known_smiles()
        pool, seen = [], set()
        for s in table["smiles"] if len(table) else []:
            c = canonical(s)
            if c and c not in known and c not in seen:
                seen.add(c)
                pool.append(c)
        return pool

    def _select(self, round_: int, progress: bool) -> None:
        from molgfn.campaigns.generator import start_source
        from molgfn.campaigns.select import select_batch
        from molgfn.reward.components import acquire

        cfg = self.cfg
        if round_ == 0:  # from nothing: diversity among the start generator's samples
            n = cfg.campaign.start_size or cfg.campaign.batch_size
            source = start_source(cfg)
            pool = self._pool(source, 5 * n, cfg.campaign.seed)  # the same start set for any batch size
            picks, note = select_batch(pool, n, None, "maxmin", seed=cfg.campaign.seed)
            rows = [
                {"id": molecule_id(0, i), "smiles": pool[j], "round": 0, "source": "start"}
                for i, j in enumerate(picks)
            ]
            self.store.finish_phase(0, "select", {"pool": len(pool), **note}, molecules=rows)
            return
        from molgfn.proxy import Proxy

        run = Path(self.store.phase(round_, "generator")["run"])
        pool = self._pool(run, cfg.pool, cfg.campaign.seed + round_)
        proxy = Proxy.load(self.store.round_dir(round_) / "proxy.pt")
        mean, std = proxy.predict(pool) if pool else (np.zeros(0), np.zeros(0))
        utilities = cfg.sign * self._labels()["label"].to_numpy(float)
        kind = cfg.acquisition.kind
        score = acquire(
            mean, std, "ei" if kind == "ei" else "ucb", cfg.acquisition.kappa if kind == "ucb" else 0.0,
            float(np.max(utilities)) if utilities.size else None,
        )  # fmt: skip
        picks, note = select_batch(
            pool,
            cfg.campaign.batch_size,
            score,
            cfg.selection.diversity,
            cfg.selection.max_similarity,
            cfg.campaign.seed,
        )
        rows = [
            {"id": molecule_id(round_, i), "smiles": pool[j], "round": round_, "source": "generator",
             "predicted": cfg.sign * float(mean[j]), "spread": float(std[j]), "acquisition": float(score[j])}
            for i, j in enumerate(picks)
        ]  # fmt: skip
        if not rows:
            raise MolgfnError(
                f"round {round_}: the pool held no new molecule (every sample is already labelled)"
            )
        self.store.finish_phase(
            round_, "select", {"pool": len(pool), "batch": len(rows), **note}, molecules=rows
        )

    def _label(self, round_: int, progress: bool) -> bool:
        batch = self.store.molecules(round_)
        todo = batch[batch["labelled"].isna()]
        if self.cfg.lab:
            out = self.store.round_dir(round_) / "batch.csv"
            if not out.exists():
                export_batch(self, round_, out)
            if len(todo) == len(batch):  # nothing imported yet
                print(f"campaign {self.id}: round {round_}: {len(batch)} molecules wait for lab results in {out}; "
                      f"then: molgfn campaign import {self.id} RESULTS.csv", file=sys.stderr, flush=True)  # fmt: skip
                return False
            self.store.finish_phase(
                round_, "label", {"labelled": int(len(batch) - len(todo)), "missing": len(todo)}
            )
            return True
        scorer = self._oracle()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=len(batch), initial=len(batch) - len(todo), desc=f"round {round_}: oracle", unit="mol"
            )
        ids, smiles = todo["id"].tolist(), todo["smiles"].tolist()
        try:
            for start in range(0, len(ids), LABEL_PIECE):
                piece = smiles[start : start + LABEL_PIECE]
                raw = np.asarray(scorer.score(piece).raw["oracle"], dtype=float)
                self.store.set_labels(
                    {i: (v, None if math.isfinite(v) else "the oracle gave no value") for i, v in
                     zip(ids[start : start + LABEL_PIECE], raw)}
                )  # fmt: skip
                if bar is not None:
                    bar.update(len(piece))
        finally:
            if bar is not None:
                bar.close()
            close = getattr(scorer, "close", None)
            if close is not None:
                close()
        batch = self.store.molecules(round_)
        failed = int((batch["labelled"].notna() & batch["label"].isna()).sum())
        self.store.finish_phase(round_, "label", {"labelled": int(len(batch)), "failed": failed})
        return True

    def _oracle(self):
        if self.cfg.campaign.backend == "ray":
            import functools

            from molgfn.reward.remote import RemoteScorer

            return RemoteScorer(
                functools.partial(_oracle_of, self.store.config_path), address=self.cfg.campaign.ray_address
            )
        return self.cfg.oracle_reward()

    def _report(self, round_: int, progress: bool) -> None:
        info = round_report(self, round_)
        self.store.finish_phase(round_, "report", info)
        print(
            f"campaign {self.id}: round {round_}: " + format_report(info, self.cfg.campaign.direction),
            file=sys.stderr,
            flush=True,
        )

    # ----------------------------------------------------------------------------------------- status
    def summary(self) -> pd.DataFrame:
        """One row per reported round: labels, oracle calls, best, top-10 mean, hits, proxy errors."""
        rows = []
        for round_ in range(0, self.store.last_round() + 1):
            info = self.store.phase(round_, "report")
            if info is not None:
                proxy = self.store.phase(round_, "proxy") or {}
                rows.append(
                    {"round": round_, **info, "proxy_valid_rmse": (proxy.get("valid") or {}).get("rmse")}
                )
        return pd.DataFrame(rows)


def _oracle_of(config_path: Path):
    """The oracle reward of the campaign at ``config_path`` (built on each Ray actor)."""
    return Campaign(Path(config_path).parent).cfg.oracle_reward()


def _better(cfg: CampaignConfig, values: np.ndarray) -> np.ndarray:
    return cfg.sign * values


def round_report(campaign: Campaign, round_: int) -> dict[str, Any]:
    cfg, store = campaign.cfg, campaign.store
    frame = store.molecules()
    frame = frame[frame["round"] <= round_]
    labelled = frame[frame["labelled"].notna() & frame["label"].notna()]
    values = labelled["label"].to_numpy(float)
    utility = _better(cfg, values)
    threshold = cfg.campaign.hit_threshold
    if not math.isfinite(threshold):
        start = labelled[labelled["round"] == 0]["label"].to_numpy(float)
        first = store.phase(0, "report")
        threshold = first["threshold"] if first else float(np.quantile(_better(cfg, start), 0.9)) * cfg.sign
    top = np.sort(utility)[::-1][:10]
    paid = frame[(frame["source"] != "data") & frame["labelled"].notna()]
    info: dict[str, Any] = {
        "labels": int(len(labelled)),
        "oracle_calls": int(len(paid)),
        "best": float(cfg.sign * top[0]) if top.size else None,
        "top10_mean": float(cfg.sign * top.mean()) if top.size else None,
        "hits": int(np.sum(utility >= cfg.sign * threshold)),
        "threshold": float(threshold),
    }
    batch = frame[(frame["round"] == round_) & frame["label"].notna() & frame["predicted"].notna()]
    if len(batch) >= 2:
        from scipy.stats import spearmanr

        err = batch["predicted"].to_numpy(float) - batch["label"].to_numpy(float)
        info["batch_rmse"] = float(np.sqrt(np.mean(err**2)))
        rho = spearmanr(batch["predicted"], batch["label"]).statistic
        info["batch_spearman"] = None if not np.isfinite(rho) else float(rho)
    batch_all = frame[frame["round"] == round_]
    labelled_batch = batch_all[batch_all["label"].notna()]["label"].to_numpy(float)
    if labelled_batch.size:
        info["batch_best"] = float(cfg.sign * np.max(_better(cfg, labelled_batch)))
        info["batch_mean"] = float(labelled_batch.mean())
    return info


def format_report(info: dict[str, Any], direction: str = "maximize") -> str:
    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)

    at_least = "<=" if direction == "minimize" else ">="  # as good as the threshold or better
    parts = [f"{info['labels']} labels ({info['oracle_calls']} oracle calls)", f"best {f(info['best'])}",
             f"top-10 mean {f(info['top10_mean'])}", f"hits {info['hits']} ({at_least} {f(info['threshold'])})"]  # fmt: skip
    if "batch_rmse" in info:
        parts.append(f"batch RMSE {f(info['batch_rmse'])}, Spearman {f(info.get('batch_spearman'))}")
    return " | ".join(parts)


# ----------------------------------------------------------------------------------- lab round trip


def export_batch(campaign: Campaign, round_: int, out: str | Path) -> Path:
    """Round ``round_``'s batch as CSV or SDF (by the suffix): id, smiles, predicted, spread, label."""
    out = Path(out)
    batch = campaign.store.molecules(round_)
    if batch.empty:
        raise MolgfnError(f"--round {round_}: campaign {campaign.id} has no batch for this round yet")
    columns = ["id", "smiles", "round", "source", "predicted", "spread", "acquisition", "label"]
    table = batch[columns]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix.lower() == ".sdf":
        from rdkit import Chem
        from rdkit.Chem import AllChem

        writer = Chem.SDWriter(str(tmp))
        for row in table.itertuples(index=False):
            mol = Chem.MolFromSmiles(row.smiles)
            AllChem.Compute2DCoords(mol)
            mol.SetProp("_Name", row.id)
            for key in columns:
                value = getattr(row, key)
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    mol.SetProp(key, str(value))
            writer.write(mol)
        writer.close()
    elif out.suffix.lower() in (".csv", ".tsv"):
        table.to_csv(tmp, index=False, sep="\t" if out.suffix.lower() == ".tsv" else ",")
    else:
        raise MolgfnError(f"--out {out}: use a .csv, .tsv or .sdf file")
    shutil.move(tmp, out)
    return out


def import_results(
    campaign: Campaign, path: str | Path, value_col: str | None = None
) -> tuple[int, list[str]]:
    """Labels from a lab's results table (by ``id`` or ``smiles``). Returns (stored, problems): one line
    per problem row (missing, unknown, duplicate, non-numeric) and per batch molecule the file lacks;
    every good row is kept."""
    path = Path(path)
    if not path.is_file():
        raise MolgfnError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, sep=None, engine="python", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MolgfnError(f"{path}: not a readable table ({exc})") from None
    lower = {c.lower().strip(): c for c in table.columns}
    key = lower.get("id") or lower.get("smiles")
    if key is None:
        raise MolgfnError(f"{path}: needs an 'id' or a 'smiles' column (columns: {', '.join(table.columns)})")
    if value_col is None:
        value_col = next((lower[c] for c in ("label", "value", "result", "measured") if c in lower), None)
    if value_col is None or value_col not in table.columns:
        raise MolgfnError(f"{path}: no value column (give --column; columns: {', '.join(table.columns)})")
    store = campaign.store
    frame = store.molecules()
    waiting = frame[frame["labelled"].isna()]
    by_id = dict(zip(frame["id"], frame["labelled"]))
    by_smiles = dict(zip(frame["smiles"], frame["id"]))
    use_id = key == lower.get("id")
    problems: list[str] = []
    labels: dict[str, tuple[float, str | None]] = {}
    seen: set[str] = set()
    for k in range(len(table)):
        n = k + 2  # line 1 is the header
        raw_key = str(table.iloc[k][key]).strip()
        text = str(table.iloc[k][value_col]).strip()
        if not raw_key:
            problems.append(f"{path.name}: row {n}: no {key}")
            continue
        mol_id = raw_key if use_id else by_smiles.get(canonical(raw_key) or "")
        if mol_id is None or mol_id not in by_id:
            problems.append(f"{path.name}: row {n}: unknown {key} {raw_key!r} (not in this campaign)")
            continue
        if mol_id in labels or mol_id in seen:
            problems.append(f"{path.name}: row {n}: duplicate of {mol_id} (the first row's value is kept)")
            continue
        seen.add(mol_id)
        if not text:
            problems.append(f"{path.name}: row {n}: {mol_id}: missing value")
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            problems.append(f"{path.name}: row {n}: {mol_id}: value {text!r} is not a number")
            continue
        if pd.notna(by_id[mol_id]):
            problems.append(f"{path.name}: row {n}: {mol_id} already has a label (kept)")
            continue
        labels[mol_id] = (value, None)
    stored = store.set_labels(labels)
    rounds = {int(r) for r in frame[frame["id"].isin(list(seen))]["round"]}
    for row in waiting.itertuples(index=False):
        if row.id not in labels and row.id not in seen and row.round in rounds:
            problems.append(
                f"{path.name}: {row.id} ({row.smiles}) of round {row.round}: no result in the file"
            )
    store.close()
    return stored, problems


def list_campaigns(campaigns_dir: str | Path = "campaigns") -> pd.DataFrame:
    """One row per campaign folder: id, state, round, rounds, labels, best."""
    rows = []
    for folder in sorted(Path(campaigns_dir).glob("*/campaign.toml")):
        store = CampaignStore(folder.parent)
        status = store.status()
        try:
            labelled = store.labelled()
            best_info = store.phase(store.last_round(), "report") or {}
        except Exception:  # noqa: BLE001 - a campaign being created
            labelled, best_info = pd.DataFrame(), {}
        finally:
            store.close()
        rows.append({
            "id": folder.parent.name, "state": status.get("state", "unknown"), "round": status.get("round"),
            "phase": status.get("phase"), "rounds": status.get("rounds"), "labels": len(labelled),
            "best": best_info.get("best"),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["id", "state", "round", "phase", "rounds", "labels", "best"])
