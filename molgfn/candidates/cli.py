"""``molgfn sample`` (generate and export candidates) and ``molgfn evaluate`` (set metrics of a model)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from molgfn.errors import MolgfnError
from molgfn.reward.cli import add_backend_arguments, backend_of

FORMATS = (".csv", ".sdf", ".smi")


def add_parser(sub: argparse._SubParsersAction) -> None:
    sample = sub.add_parser(
        "sample",
        help="generate candidate molecules from a trained model and export them",
        description="Generate N molecules from a trained GFlowNet (a run id or folder, a checkpoint file, or a "
        "generator folder such as models/generator_default) at inverse temperature BETA, and write them "
        "to FILE: .csv (every column), .sdf (2D structures with the same fields) or .smi.",
    )
    sample.add_argument("model", help="run id, run folder, checkpoint file or generator folder")
    sample.add_argument("--n", type=int, default=1000, help="number of molecules (default 1000)")
    sample.add_argument(
        "--beta", type=float, help="inverse temperature (default: the top of the training range)"
    )
    sample.add_argument("--unique", action="store_true", help="keep sampling until N unique molecules")
    sample.add_argument(
        "--filters",
        action="append",
        default=[],
        metavar="SPEC",
        help="filters, e.g. 'pains,lipinski,sa<=4,qed>=0.5,mw=200-500,novel' (repeatable; see docs/export.md)",
    )
    sample.add_argument("--out", type=Path, required=True, help="output file (.csv, .sdf or .smi)")
    sample.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    sample.add_argument("--seed", type=int, help="sampling seed (default: the run's seed)")
    sample.add_argument(
        "--max-samples", type=int, help="cap on trajectories drawn (default max(20 N, 10000))"
    )
    sample.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="folder of the runs (default runs)"
    )
    sample.add_argument(
        "--device", choices=("cpu", "cuda"), help="where the policy rolls out (default: the run's run.device)"
    )
    add_backend_arguments(sample)
    sample.set_defaults(func=_sample)

    generator = sub.add_parser("generator", help="package a trained run as a generator folder")
    gsub = generator.add_subparsers(dest="generator_command", metavar="COMMAND", required=True)
    save = gsub.add_parser(
        "save",
        help="write a generator folder (config.toml + policy.pt, no optimiser state) from a run",
        description="Write the latest checkpoint's policy and the run's config as a compact generator folder, "
        "which molgfn sample and the dashboard load like a run.",
    )
    save.add_argument("model", help="run id, run folder or checkpoint file")
    save.add_argument("--out", type=Path, required=True, help="folder to write")
    save.add_argument("--force", action="store_true", help="overwrite a generator folder that exists")
    save.add_argument("--runs-dir", type=Path, default=Path("runs"))
    save.set_defaults(func=_save_generator)

    evaluate = sub.add_parser(
        "evaluate",
        help="set metrics of a trained model (diversity, modes, novelty, top-k, likelihood correlation)",
    )
    evaluate.add_argument("model", help="run id, run folder, checkpoint file or generator folder")
    evaluate.add_argument("--n", type=int, default=1000, help="molecules to sample (default 1000)")
    evaluate.add_argument(
        "--beta", type=float, help="inverse temperature (default: the top of the training range)"
    )
    evaluate.add_argument(
        "--heldout", type=int, default=200, help="held-out molecules for the log R vs log p correlation"
    )
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--runs-dir", type=Path, default=Path("runs"))
    evaluate.set_defaults(func=_evaluate)


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="mol", file=sys.stderr)

    def update(fraction: float) -> None:
        bar.update(int(round(fraction * total)) - bar.n)

    return bar, update


class _Bars:
    """A sampling bar, then a scoring bar (opened when scoring starts) for :meth:`Generator.generate`."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bars = [_progress_bar(total, "sampling")]
        self.sampling = self.bars[0][1]

    def scoring(self, fraction: float) -> None:
        if len(self.bars) == 1:
            self.bars[0][0].close()
            self.bars.append(_progress_bar(self.total, "scoring"))
        self.bars[-1][1](fraction)

    def close(self) -> None:
        for bar, _ in self.bars:
            bar.close()


def _sample(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.suffix.lower() not in FORMATS:
        raise MolgfnError(
            f"--out {out}: unknown format {out.suffix or '(none)'}; use one of {', '.join(FORMATS)}"
        )
    if out.exists() and not args.force:
        raise MolgfnError(f"--out {out}: exists; pass --force to overwrite")
    if args.n < 1:
        raise MolgfnError(f"--n: must be at least 1 (got {args.n})")
    from molgfn.candidates.export import write_molecules
    from molgfn.candidates.filters import parse_filters
    from molgfn.candidates.generate import load_generator

    if args.filters:
        parse_filters(args.filters)  # validate before loading the model
    backend, address, actors = backend_of(args)  # a bad address fails before the model loads
    generator = load_generator(args.model, args.runs_dir, device=args.device)
    if backend == "ray":
        generator.use_ray(address, actors)
    lo, hi = generator.beta_range
    if args.beta is not None and not lo <= args.beta <= hi:
        print(
            f"molgfn: warning: beta {args.beta:g} is outside the training range [{lo:g}, {hi:g}]",
            file=sys.stderr,
        )
    bars = _Bars(args.n)
    table, report = generator.generate(
        args.n,
        beta=args.beta,
        unique=args.unique,
        filters=args.filters or None,
        progress=bars.sampling,
        max_samples=args.max_samples,
        seed=args.seed,
        scoring=bars.scoring,
    )
    bars.close()
    generator.close()
    if report.produced == 0:
        detail = ", ".join(f"{k}: {v}" for k, v in report.filtered.items()) or "none"
        raise MolgfnError(
            f"no molecule passed the filters in {report.sampled} samples (removed by each filter: {detail}); "
            "nothing written"
        )
    write_molecules(table, out, force=args.force)
    print(
        f"{report.produced} molecules -> {out} ({report.sampled} sampled, {report.duplicates} duplicates"
        + (
            ", removed by filters: " + ", ".join(f"{k} {v}" for k, v in report.filtered.items())
            if report.filtered
            else ""
        )
        + ")"
    )
    if report.capped:
        print(
            f"molgfn: warning: only {report.produced} of {report.requested} molecules after {report.sampled} samples "
            "(the cap; raise --max-samples, lower --beta or loosen the filters)",
            file=sys.stderr,
        )
        return 1
    return 0


def relocatable(cfg, folder: Path):
    """The config with its file paths (vocabulary, reward files) relative to ``folder``, so a generator
    folder keeps working wherever the repository is checked out."""
    import copy
    import os
    from dataclasses import replace

    def rel(value: str) -> str:
        path = Path(value)
        return os.path.relpath(path, folder.resolve()) if path.is_absolute() else value

    reward = copy.deepcopy(cfg.reward)
    for component in reward.get("components", []):
        for key in ("path", "file"):
            if isinstance(component.get(key), str):
                component[key] = rel(component[key])
    vocab = cfg.env.vocab if not Path(cfg.env.vocab).is_absolute() else rel(cfg.env.vocab)
    return replace(cfg, reward=reward, env=replace(cfg.env, vocab=vocab))


def _save_generator(args: argparse.Namespace) -> int:
    import shlex

    import torch

    from molgfn.candidates.generate import resolve
    from molgfn.config import save_config

    if (args.out / "policy.pt").exists() and not args.force:
        raise MolgfnError(f"--out {args.out}: a generator is already there; pass --force to overwrite")
    cfg, policy, source = resolve(args.model, args.runs_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    save_config(relocatable(cfg, args.out), args.out / "config.toml")
    command = shlex.join(["molgfn", "generator", "save", str(args.model), "--out", str(args.out)])
    torch.save({"policy": policy, "source": source, "command": command}, args.out / "policy.pt")
    print(f"generator from {source} -> {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from molgfn.candidates.generate import load_generator
    from molgfn.chem.metrics import pearson, set_metrics

    generator = load_generator(args.model, args.runs_dir)
    beta = generator.cfg.train.beta_max if args.beta is None else args.beta
    bars = _Bars(args.n)
    table, report = generator.generate(
        args.n, beta=beta, progress=bars.sampling, seed=args.seed, scoring=bars.scoring
    )
    bars.close()
    proxy = generator.proxy
    metrics = set_metrics(
        list(table["smiles"]),
        list(table["reward"]),
        reference=list(proxy.train_smiles) if proxy is not None else (),
        mode_threshold=generator.cfg.train.mode_threshold,
    )
    # log R against the model's log-probability on held-out molecules (built by the uniform random policy)
    model = generator.model
    batch, _ = model.env.random_rollout(args.heldout, np.random.default_rng(args.seed + 1))
    trees = batch.trees()
    smiles = model.env.smiles(batch)
    score, _ = generator.scorer(smiles)
    log_r = model.sampler.log_reward(score, np.full(len(score), beta))
    log_p = model.log_prob_estimate(trees, beta, n_samples=16)
    metrics["logr_logp_pearson"] = pearson(log_r, log_p)
    print(f"{generator.source}: {args.n} molecules at beta {beta:g}")
    width = max(map(len, metrics))
    for key, value in metrics.items():
        print(f"  {key:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    return 0
