"""``molgfn verify``: train on a tiny enumerable vocabulary and report the exact total variation.

The reward is fixed and pseudo-random (:func:`molgfn.gflownet.hashed_score`), β = 1, so the target
R(x)/Z is known exactly over the enumerated terminal objects (DESIGN.md §3).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
from tqdm import tqdm

from molgfn.chem.enumerate import (
    enumerate_states,
    exact_terminal_distribution,
    target_distribution,
    total_variation,
)
from molgfn.chem.tree import tree_smiles
from molgfn.gflownet import GFlowNet, hashed_score


@dataclass
class VerifyResult:
    objective: str
    steps: int
    tv_initial: float
    tv_final: float
    n_terminal: int
    seconds: float
    history: list[tuple[int, float]]


def verify_config(
    objective: str, steps: int, vocab: str = "tiny", max_frags: int = 3, seed: int = 0, **overrides
):
    """A small config for exact checks (plain namespaces; the same fields as the run config)."""
    train = dict(
        steps=steps,
        batch_size=64,
        lr=3e-3,
        lr_logz=0.1,
        lr_schedule="constant",
        warmup_steps=0,
        grad_clip=10.0,
        epsilon=0.05,
        beta_min=1.0,
        beta_max=1.0,
        replay_size=0,
        replay_fraction=0.0,
    )
    obj = dict(
        name=objective,
        subtb_lambda=0.9,
        gae_lambda=0.99,
        critic_lr=3e-3,
        trpo=False,
        trpo_max_kl=0.01,
        coupled_backward=False,
        backward_guide="forward",
        ppo_epochs=4,
        ppo_minibatches=4,
        ppo_clip=0.2,
        ent_gae_lambda=0.7,
    )
    if objective in ("rlgfn", "entppo"):
        train["epsilon"] = 0.0  # on-policy
    model = dict(hidden=64, layers=2, layer="gine", beta_embedding=8, learned_backward=False)
    for key, value in overrides.items():
        section, name = key.split(".")
        {"train": train, "objective": obj, "model": model}[section][name] = value
    return SimpleNamespace(
        run=SimpleNamespace(seed=seed, device="cpu", threads=1),
        env=SimpleNamespace(vocab=vocab, max_frags=max_frags),
        model=SimpleNamespace(**model),
        objective=SimpleNamespace(**obj),
        train=SimpleNamespace(**train),
        reward=None,
    )


def exact_tv(gfn: GFlowNet, space, beta: float = 1.0) -> float:
    """Exact total variation between the policy's terminal distribution and R/Z, R(x) = score(x)^β.

    The target has no symmetry weight: W only enters training, to make per-action policies exact."""
    p = exact_terminal_distribution(space, gfn.exact_policy(beta))
    target = target_distribution(
        space, lambda t: beta * np.log(hashed_score([tree_smiles(t, space.vocab)])[0][0])
    )
    return total_variation(p, target)


def verify(cfg, eval_every: int = 50, progress: bool = False) -> VerifyResult:
    start = time.perf_counter()
    gfn = GFlowNet(cfg, score_fn=hashed_score)
    space = enumerate_states(gfn.vocab, cfg.env.max_frags)
    tv0 = exact_tv(gfn, space)
    history = [(0, tv0)]
    bar = tqdm(range(cfg.train.steps), desc=f"verify {cfg.objective.name}", disable=not progress)
    for step in bar:
        gfn.train_step(step)
        if (step + 1) % eval_every == 0 or step + 1 == cfg.train.steps:
            history.append((step + 1, exact_tv(gfn, space)))
            bar.set_postfix(tv=f"{history[-1][1]:.4f}")
    torch.set_num_threads(1)
    return VerifyResult(
        cfg.objective.name,
        cfg.train.steps,
        tv0,
        history[-1][1],
        len(space.terminal_keys),
        time.perf_counter() - start,
        history,
    )


def add_parser(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="train on a tiny vocabulary and report the exact total variation to the target",
        description="Train an objective on a small enumerable vocabulary with a fixed pseudo-random reward "
        "and report the exact total variation between the model's terminal distribution and R/Z.",
    )
    p.add_argument("--vocab", default="tiny", help="vocabulary file or shipped name (default: tiny)")
    p.add_argument("--objective", default="tb", help="objective name (default: tb)")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--max-frags", type=int, default=3, help="size bound (default 3)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=50, help="steps between exact evaluations")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from molgfn.errors import MolgfnError
    from molgfn.objectives import OBJECTIVES

    if args.objective not in OBJECTIVES:
        raise MolgfnError(f"--objective: must be one of {', '.join(OBJECTIVES)} (got {args.objective!r})")
    if args.steps < 1 or args.max_frags < 1 or args.batch_size < 1:
        raise MolgfnError("--steps, --max-frags and --batch-size must be positive")
    cfg = verify_config(
        args.objective,
        args.steps,
        args.vocab,
        args.max_frags,
        args.seed,
        **{"train.batch_size": args.batch_size},
    )
    result = verify(cfg, eval_every=args.eval_every, progress=True)
    print(
        f"objective {result.objective}: {result.n_terminal} terminal objects, {result.steps} steps, {result.seconds:.1f} s"
    )
    for step, tv in result.history:
        print(f"  step {step:>6}  total variation {tv:.4f}")
    verdict = "PASS" if result.tv_final < 0.05 else "FAIL"
    print(f"{verdict}: exact total variation {result.tv_final:.4f} (threshold 0.05)")
    return 0 if verdict == "PASS" else 1
