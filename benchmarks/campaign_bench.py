"""Campaigns against a hidden truth: does learning in rounds find better molecules per oracle call?

The oracle is the shipped FXa proxy (models/proxy_default.pt), which the campaign never sees: its own
proxy learns only from the labels it buys. Three arms, each with 100 + 500 labels per seed:

- campaign: a start set of 100 molecules picked for diversity among the shipped generator's samples,
  then ``--rounds`` rounds of ``500 / rounds`` labels (proxy retrained, generator warm-started);
- one-shot: the same start set, the proxy trained once on it, one generator trained as long as the
  campaign's generators together, and the 500 best (same acquisition and diversity rule) picked at once;
- random: the start set plus 500 distinct molecules sampled from the shipped generator.

Prints, per arm, the best label and the mean of the top 10 after every batch (against oracle calls),
then the mean and standard deviation over the seeds. One torch thread.

    python benchmarks/campaign_bench.py [--seeds 0 1 2] [--rounds 5] [--steps 30] [--out bench-out/campaign]

Note: the shipped generator was trained against this same proxy, so every arm starts from molecules
that already score well; the comparison between arms is what the benchmark measures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def config_text(name: str, rounds: int, batch: int, steps: int, seed: int, cache: Path) -> str:
    return f"""
[campaign]
name = "{name}"
rounds = {rounds}
batch_size = {batch}
start_size = 100
seed = {seed}
oracle_cache = "{cache}"

[oracle]
kind = "proxy"
path = "default"

[acquisition]
kind = "ucb"
kappa = 1.0

[selection]
diversity = "ceiling"
max_similarity = 0.7

[generator]
start = "default"
steps = {steps}
batch_size = 32
"""


def curve(campaign) -> list[tuple[int, float, float]]:
    """(oracle calls, best, top-10 mean) after each round's batch."""
    out = []
    for _, row in campaign.summary().iterrows():
        out.append((int(row["oracle_calls"]), float(row["best"]), float(row["top10_mean"])))
    return out


def run_campaign(
    folder: Path, name: str, rounds: int, batch: int, steps: int, seed: int
) -> tuple[list, float]:
    from molgfn.campaigns import Campaign, new_campaign

    config = folder / f"{name}.toml"
    config.write_text(config_text(name, rounds, batch, steps, seed, folder / "oracle.sqlite"))
    started = time.perf_counter()
    campaign = new_campaign(config, campaigns_dir=folder / "campaigns", campaign_id=f"{name}-{seed}")
    Campaign(campaign.path).run(progress=False)
    return curve(Campaign(campaign.path)), time.perf_counter() - started


def run_random(start: Path, n: int, seed: int, rounds: int) -> list:
    """The campaign's start set (same seed) plus ``n`` distinct samples of the shipped generator."""
    from molgfn.campaigns import Campaign
    from molgfn.candidates.generate import load_generator
    from molgfn.proxy import DEFAULT_PROXY, Proxy

    campaign = Campaign(start)
    labelled = campaign.store.molecules(0)
    known = set(labelled["smiles"])
    generator = load_generator("default")
    table, _ = generator.generate(n + len(known), unique=True, seed=1000 + seed)
    generator.close()
    extra = [s for s in table["smiles"] if s not in known][:n]
    truth = Proxy.load(DEFAULT_PROXY)
    values = list(labelled["label"]) + list(truth.predict(extra)[0])
    out, k = [], len(labelled)
    step = max(1, n // rounds)
    for calls in [k, *range(k + step, k + n + 1, step)]:
        top = sorted(values[:calls], reverse=True)
        out.append((calls, top[0], float(np.mean(top[:10]))))
    return out


def plot(results: dict[str, list], out: Path) -> Path:
    """Best label and top-10 mean against oracle calls, mean over seeds (band: min to max): plotly HTML,
    and a PNG of it drawn by headless Chromium (playwright), as the docs show it."""
    from plotly.subplots import make_subplots

    colours = {"campaign": "#1f77b4", "one-shot": "#d62728", "random": "#7f7f7f"}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("best label", "top-10 mean"))
    for name, runs in results.items():
        calls = [c for c, _, _ in runs[0]]
        for col, k in ((1, 1), (2, 2)):
            values = np.array([[p[k] for p in run] for run in runs])
            fig.add_scatter(x=calls, y=values.mean(0), mode="lines+markers", name=name, legendgroup=name,
                            showlegend=col == 1, line={"color": colours[name], "dash": "dot" if name == "one-shot" else "solid"}, row=1, col=col,
                            error_y={"type": "data", "symmetric": False, "array": values.max(0) - values.mean(0),
                                     "arrayminus": values.mean(0) - values.min(0)})  # fmt: skip
    fig.update_layout(
        template="plotly_white", width=1000, height=420, margin={"l": 50, "r": 20, "t": 40, "b": 50}
    )
    fig.update_xaxes(title="oracle calls (labels)")
    fig.update_yaxes(title="pKi (hidden FXa proxy)")
    html = out / "campaign_bench.html"
    fig.write_html(html, include_plotlyjs=True)
    png = out / "campaign_bench.png"
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox",
                                        "--disable-gpu", "--disable-background-networking"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1020, "height": 440})
            page.goto(html.resolve().as_uri())
            page.wait_for_selector(".main-svg")
            page.screenshot(path=str(png))
            browser.close()
    except Exception as exc:  # noqa: BLE001 - the HTML is there; the PNG needs playwright and chromium
        print(f"campaign_bench: no PNG ({type(exc).__name__}: {exc}); the plot is in {html}")
        return html
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--labels", type=int, default=500, help="labels after the start set")
    parser.add_argument("--steps", type=int, default=30, help="generator steps per campaign round")
    parser.add_argument("--out", default="bench-out/campaign")
    parser.add_argument("--plot-only", action="store_true", help="only plot OUT/results.json again")
    args = parser.parse_args()
    if args.plot_only:
        out = Path(args.out)
        print(plot(json.loads((out / "results.json").read_text()), out))
        return
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"campaign_bench: seeds {args.seeds}, {args.rounds} rounds x {args.labels // args.rounds} labels, "
          f"{args.steps} generator steps per round, 1 torch thread, {os.cpu_count()} CPUs")  # fmt: skip
    results: dict[str, list] = {"campaign": [], "one-shot": [], "random": []}
    for seed in args.seeds:
        folder = out / f"seed{seed}"
        folder.mkdir(exist_ok=True)
        batch = args.labels // args.rounds
        c, wall_c = run_campaign(folder, "rounds", args.rounds, batch, args.steps, seed)
        o, wall_o = run_campaign(folder, "oneshot", 1, args.labels, args.steps * args.rounds, seed)
        r = run_random(folder / "campaigns" / f"rounds-{seed}", args.labels, seed, args.rounds)
        for name, points, wall in (("campaign", c, wall_c), ("one-shot", o, wall_o), ("random", r, None)):
            results[name].append(points)
            walls = f" ({wall:.0f} s)" if wall else ""
            trail = "  ".join(f"{calls}: {best:.2f}/{top:.2f}" for calls, best, top in points)
            print(f"seed {seed} {name:9s}{walls}  calls: best/top-10  {trail}", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"plot: {plot(results, out)}")
    print("\nafter all labels (mean ± std over seeds):")
    print("| arm | best label | top-10 mean |\n|---|---|---|")
    for name, runs in results.items():
        best = [p[-1][1] for p in runs]
        top = [p[-1][2] for p in runs]

        def sd(v):
            return statistics.stdev(v) if len(v) > 1 else 0.0

        print(
            f"| {name} | {statistics.mean(best):.3f} ± {sd(best):.3f} | {statistics.mean(top):.3f} ± {sd(top):.3f} |"
        )


if __name__ == "__main__":
    main()
