"""Design campaigns: active learning in rounds against an oracle (docking, a plugin, a proxy) or the lab.

    from molgfn.campaigns import new_campaign, Campaign
    campaign = new_campaign("campaign.toml", data="assay.csv")
    campaign.run()            # 'finished', or 'waiting' for a lab's results
    campaign.summary()        # one row per round: best label, top-10 mean, hits, the proxy's error

See docs/campaigns.md."""

from __future__ import annotations

import importlib
from typing import Any

# these load RDKit and torch: imported on first use, so that `molgfn campaign --help` stays light
_LAZY = {
    "Campaign": "molgfn.campaigns.campaign",
    "export_batch": "molgfn.campaigns.campaign",
    "format_report": "molgfn.campaigns.campaign",
    "import_results": "molgfn.campaigns.campaign",
    "list_campaigns": "molgfn.campaigns.campaign",
    "new_campaign": "molgfn.campaigns.campaign",
    "CampaignConfig": "molgfn.campaigns.config",
    "campaign_config_from_dict": "molgfn.campaigns.config",
    "load_campaign_config": "molgfn.campaigns.config",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'molgfn.campaigns' has no attribute {name!r}")
