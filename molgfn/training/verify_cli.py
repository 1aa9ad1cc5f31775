"""``molgfn verify`` (heavy imports happen inside the handler, so the CLI starts fast)."""

from __future__ import annotations

from molgfn.errors import MolgfnError


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
    from molgfn.objectives.registry import OBJECTIVES
    from molgfn.training.verify import verify, verify_config

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
