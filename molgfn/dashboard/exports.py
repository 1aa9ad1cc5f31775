"""What the Generate page samples from, and molecule tables as download bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from molgfn.errors import MolgfnError
from molgfn.resources import DEFAULT_GENERATOR
from molgfn.training.runs import RunStore, list_runs

EXPORT_FORMATS = {"csv": "text/csv", "sdf": "chemical/x-mdl-sdfile", "smi": "chemical/x-daylight-smiles"}


def export_bytes(table: Any, fmt: str) -> bytes:
    """A molecule table written by the export writers (:func:`molgfn.candidates.export.write_molecules`) in
    ``fmt`` (csv, sdf or smi), as bytes for a download button."""
    import tempfile

    from molgfn.candidates.export import write_molecules

    if fmt not in EXPORT_FORMATS:
        raise MolgfnError(f"export format {fmt!r}: must be one of {', '.join(EXPORT_FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="molgfn-export-") as folder:
        path = Path(folder) / f"molecules.{fmt}"
        write_molecules(table, path, force=True)
        return path.read_bytes()


def shortlist_table(rows: Any, proxy: Any = None) -> Any:
    """The export table (``molecule_table``) of shortlisted molecules of a run: ``rows`` holds their
    ``smiles`` and the run's columns (``reward``, the components' desirabilities, ``step``), which are kept;
    with the run's ``proxy``, predicted pK, spread, novelty, nearest training molecule and ``in_domain``."""
    from molgfn.candidates.export import molecule_table

    keep = [c for c in rows.columns if c == "reward" or c == "step" or c.endswith("_desirability")]
    reference = list(proxy.train_smiles) if proxy is not None and hasattr(proxy, "train_smiles") else None
    return molecule_table(
        list(rows["smiles"]),
        proxy=proxy,
        reference_smiles=reference,
        extra={c: rows[c].to_numpy() for c in keep},
    )


def generator_sources(runs_dir: str | Path) -> list[str]:
    """What the Generate page can sample from: the shipped generator (if present), then every run with a
    checkpoint (finished or stopped first), as ids."""
    sources = []
    if DEFAULT_GENERATOR.exists():
        sources.append("shipped")
    frame = list_runs(runs_dir)
    for row in frame.itertuples():
        if (
            row.status in ("finished", "stopped", "interrupted", "running")
            and RunStore(Path(row.path)).checkpoints()
        ):
            sources.append(row.id)
    return sources
