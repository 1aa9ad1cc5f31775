"""The Campaigns page's side: the campaigns and their rounds, starting or continuing one in the
background (``molgfn campaign run``, like a training run), a batch's download bytes and a lab's upload."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from molgfn.campaigns import Campaign, export_batch, import_results, list_campaigns, new_campaign
from molgfn.dashboard.launch import _spawn, tail
from molgfn.dashboard.settings import write_new_file
from molgfn.errors import MolgfnError
from molgfn.training.runs import pid_alive

LOG_NAME = "campaign.log"


def campaigns_table(campaigns_dir: str | Path) -> pd.DataFrame:
    """Every campaign: id, state (``running`` only while its process lives), round, phase, labels, best."""
    frame = list_campaigns(campaigns_dir)
    states = []
    for row in frame.itertuples(index=False):
        status = Campaign(Path(campaigns_dir) / row.id).store.status()
        state = row.state
        if state == "running" and not pid_alive(status.get("pid"), None):
            state = "interrupted"
        states.append(state)
    frame["state"] = states
    return frame


def campaign_view(campaigns_dir: str | Path, campaign_id: str) -> dict[str, Any]:
    """What the page shows of one campaign: status, per-round summary, molecules, lab or not."""
    campaign = Campaign(Path(campaigns_dir) / campaign_id)
    try:
        status = campaign.store.status()
        state = status.get("state", "unknown")
        if state == "running" and not pid_alive(status.get("pid"), None):
            state = "interrupted"
        return {
            "id": campaign.id,
            "state": state,
            "round": status.get("round"),
            "phase": status.get("phase"),
            "message": status.get("message"),
            "rounds": campaign.cfg.campaign.rounds,
            "lab": campaign.cfg.lab,
            "direction": campaign.cfg.campaign.direction,
            "summary": campaign.summary(),
            "molecules": campaign.store.molecules(),
            "log": tail(campaign.path / LOG_NAME, 20),
        }
    finally:
        campaign.store.close()


def start_campaign(campaigns_dir: str | Path, campaign_id: str, rounds: int | None = None) -> int:
    """Run (or continue) a campaign in a background process; returns its pid."""
    folder = Path(campaigns_dir) / campaign_id
    view = campaign_view(campaigns_dir, campaign_id)
    if view["state"] == "running":
        raise MolgfnError(f"campaign {campaign_id} is running already")
    argv = [sys.executable, "-m", "molgfn", "campaign", "run", campaign_id, "--campaigns-dir",
            str(Path(campaigns_dir)), "--no-progress"]  # fmt: skip
    if rounds is not None:
        argv += ["--rounds", str(int(rounds))]
    return _spawn(argv, folder / LOG_NAME)


def create_campaign(
    campaigns_dir: str | Path, config_name: str, config_bytes: bytes, data: tuple[str, bytes] | None = None
) -> str:
    """A new campaign from an uploaded config (and assay table); returns its id. The uploads are kept in
    ``<campaigns_dir>/.uploads/``; a bad config fails here, naming the field, and leaves no campaign."""
    uploads = Path(campaigns_dir) / ".uploads"
    config = write_new_file(uploads, config_name, config_bytes)
    table = write_new_file(uploads, data[0], data[1]) if data is not None else None
    campaign = new_campaign(config, table, campaigns_dir)
    campaign.store.close()
    return campaign.id


def batch_bytes(campaigns_dir: str | Path, campaign_id: str, round_: int, fmt: str = "csv") -> bytes:
    """Round ``round_``'s batch as CSV or SDF bytes (for a download button)."""
    if fmt not in ("csv", "sdf"):
        raise MolgfnError(f"format: csv or sdf (got {fmt!r})")
    campaign = Campaign(Path(campaigns_dir) / campaign_id)
    with tempfile.TemporaryDirectory() as tmp:
        out = export_batch(campaign, round_, Path(tmp) / f"batch.{fmt}")
        campaign.store.close()
        return out.read_bytes()


def import_upload(
    campaigns_dir: str | Path, campaign_id: str, name: str, data: bytes
) -> tuple[int, list[str]]:
    """A lab's results file (uploaded): stored under the campaign's ``imports/``, then imported."""
    campaign = Campaign(Path(campaigns_dir) / campaign_id)
    path = write_new_file(campaign.path / "imports", name, data)
    return import_results(campaign, path)
