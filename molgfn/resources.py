"""What molgfn ships: vocabularies, target tables, the default proxy and generator, configs, the dashboard.

They are package resources (``molgfn/_shipped/…``; in a checkout these link to the top-level ``data/``,
``models/``, ``configs/`` and ``app/`` folders), so an installed wheel finds them from any working folder.
Short names resolve to them: ``default`` and ``tiny`` for vocabularies and configs, ``default`` for the
proxy and the generator. A name that is not shipped is a path.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# a regular (unzipped) install, as pip makes it: the resources are files on disk. Resolved, so that in a
# checkout they are the top-level folders themselves (paths in saved configs read the same either way).
SHIPPED = Path(str(files("molgfn") / "_shipped"))
DATA_DIR = (SHIPPED / "data").resolve()
MODELS_DIR = (SHIPPED / "models").resolve()
CONFIGS_DIR = (SHIPPED / "configs").resolve()
APP_DIR = (SHIPPED / "app").resolve()
TARGETS_DIR = DATA_DIR / "targets"
VOCAB_DIR = DATA_DIR / "vocab"

VOCABULARIES = {"default": VOCAB_DIR / "default.txt", "tiny": VOCAB_DIR / "tiny.txt"}
CONFIGS = {"default": CONFIGS_DIR / "default.toml", "tiny": CONFIGS_DIR / "tiny.toml"}
CAMPAIGN_CONFIGS = {"campaign_seh_docking": CONFIGS_DIR / "campaign_seh_docking.toml"}
DEFAULT_PROXY = MODELS_DIR / "proxy_default.pt"
DEFAULT_GENERATOR = MODELS_DIR / "generator_default"
GENERATORS = {"default": DEFAULT_GENERATOR}
PROXIES = {
    "default": DEFAULT_PROXY,
    "drd3": MODELS_DIR / "proxy_drd3.pt",
    "htr1a": MODELS_DIR / "proxy_htr1a.pt",
}


def resolve(value: str | Path, shipped: dict[str, Path]) -> Path:
    """A shipped resource by name, or ``value`` as a path (a file of that name in the working folder wins)."""
    path = Path(value)
    if str(value) in shipped and not path.exists():
        return shipped[str(value)]
    return path
