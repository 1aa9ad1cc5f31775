"""Candidate filters: the ``--filters`` spec language of ``molgfn sample`` and the dashboard.

A spec is a comma-separated list of filters, for example::

    pains,lipinski,veber,sa<=4,qed>=0.5,mw=200-500,has=[NH2]c,not=[N+](=O)[O-],novel

Commas split filters only at the top level: a comma inside ``[...]`` or ``(...)`` belongs to a SMARTS
(``has=[N,O]C(=O)[C,N]`` is one filter), and a SMARTS never needs a comma outside brackets. A list of
specs (several ``--filters`` values) is the same as the specs joined by commas. Filter names are
case-insensitive; SMARTS are kept as written. A filter given twice is applied once.

========================  ==================================================================
``pains``                 no PAINS alert (RDKit FilterCatalog PAINS A+B+C, as the reward's pains)
``brenk``                 no Brenk alert (unwanted groups in screening libraries, Brenk et al. 2008)
``nih``                   no NIH alert (reactive, assay-interfering groups; Jadhav et al. 2010)
``alerts``                no alert of any of the three (PAINS, Brenk, NIH)
``lipinski``              at most one violation of MW ≤ 500, logP ≤ 5, HBD ≤ 5, HBA ≤ 10
                          (Lipinski et al. 1997: HBD = N–H + O–H bonds, HBA = N + O atoms)
``veber``                 rotatable bonds ≤ 10 and TPSA ≤ 140 Å² (Veber et al. 2002)
``novel``                 canonical SMILES not in the reference (training) set; needs one
``in_domain``             inside the proxy's applicability domain: nearest training similarity
                          ≥ 0.4 and proxy spread ≤ 1.0 pK (``export.in_domain``); needs both
``has=SMARTS``            contains the substructure
``not=SMARTS``            does not contain the substructure
``PROP<=X`` (``>=, <, >``)  a threshold on a property
``PROP=LOW-HIGH``         LOW ≤ PROP ≤ HIGH (``logp=-1-3`` is −1 to 3)
========================  ==================================================================

PROP is one of the computed properties qed, sa, mw, logp, tpsa, hbd, hba, rotatable_bonds (alias
rotb), or one of the columns the caller may pass to :func:`apply_filters` (reward, proxy_mean,
proxy_std, nearest_train_similarity). A molecule whose property is undefined (NaN) fails the filter.
Invalid SMILES never pass.

:func:`parse_filters` validates everything up front (unknown names, SMARTS, numbers) and raises
:class:`~molgfn.errors.MolgfnError` naming the offending filter; :func:`apply_filters` returns the mask
of molecules passing every filter and how many each filter removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from rdkit import Chem, rdBase

from molgfn.candidates.reference import ReferenceSet, canonical_smiles
from molgfn.chem.molecules import MolBatch
from molgfn.errors import MolgfnError
from molgfn.reward.components import Alerts, Pains
from molgfn.reward.properties import PROPERTIES, compute_properties

NAMED_FILTERS = ("pains", "brenk", "nih", "alerts", "lipinski", "veber", "novel", "in_domain")
# the alert filters and the FilterCatalog catalogues each checks
ALERT_FILTERS = {"brenk": ("brenk",), "nih": ("nih",), "alerts": ("pains", "brenk", "nih")}
SUBSTRUCTURE_FILTERS = ("has", "not")
PROPERTY_ALIASES = {"rotb": "rotatable_bonds"}
# thresholds on columns computed elsewhere (the reward, the proxy, the reference set)
COLUMN_PROPERTIES = ("reward", "proxy_mean", "proxy_std", "nearest_train_similarity")
LIPINSKI_LIMITS = {"mw": 500.0, "logp": 5.0, "hbd": 5.0, "hba": 10.0}
VEBER_LIMITS = {"rotatable_bonds": 10.0, "tpsa": 140.0}
INVALID = "invalid"  # the key of apply_filters' counts for unparsable SMILES

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_THRESHOLD = re.compile(r"^([a-z_]+)\s*(<=|>=|<|>|=)\s*(.*)$")
_RANGE = re.compile(rf"^({_NUMBER})\s*-\s*({_NUMBER})$")
_OPERATORS = {"<=": np.less_equal, ">=": np.greater_equal, "<": np.less, ">": np.greater}


@dataclass(frozen=True)
class Filter:
    """One parsed filter. ``spec`` is its text as given (the key of :func:`apply_filters`' counts);
    ``kind`` is a named filter, 'has', 'not' or 'property'."""

    spec: str
    kind: str
    prop: str | None = None  # property filters: the property
    operator: str | None = None  # '<=', '>=', '<', '>' or '=' (a range)
    low: float = -np.inf
    high: float = np.inf
    smarts: str | None = None
    query: Chem.Mol | None = field(default=None, compare=False, repr=False)

    @property
    def needs_reference(self) -> bool:
        return self.kind == "novel"


def valid_filter_names() -> str:
    """One line listing every accepted filter form (used in error messages and the CLI help)."""
    props = ", ".join([*PROPERTIES, "rotb", *COLUMN_PROPERTIES])
    return (
        f"{', '.join(NAMED_FILTERS)}, has=SMARTS, not=SMARTS, PROP<=X, PROP>=X, PROP<X, PROP>X, "
        f"PROP=LOW-HIGH with PROP one of {props}"
    )


def split_spec(spec: str) -> list[str]:
    """Split at commas outside brackets and parentheses; items are stripped, empty items dropped."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for char in spec:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_filters(spec: str | Sequence[str] | None) -> list[Filter]:
    """Parse and validate a filter spec (a string or a list of strings); see the module docstring.

    Raises :class:`MolgfnError` for an unknown filter (listing the valid ones), an invalid SMARTS
    (quoting it) or a bad number or range (naming the filter).
    """
    if spec is None:
        return []
    specs = [spec] if isinstance(spec, str) else list(spec)
    filters: list[Filter] = []
    seen: set[str] = set()
    for text in specs:
        if not isinstance(text, str):
            raise MolgfnError(f"filters: expected text, got {text!r}")
        for item in split_spec(text):
            parsed = _parse_one(item)
            if parsed.spec not in seen:
                seen.add(parsed.spec)
                filters.append(parsed)
    return filters


def _parse_one(item: str) -> Filter:
    lowered = item.lower()
    if lowered in NAMED_FILTERS:
        return Filter(lowered, lowered)
    head, sep, smarts = item.partition("=")
    if sep and head.strip().lower() in SUBSTRUCTURE_FILTERS:
        kind = head.strip().lower()
        smarts = smarts.strip()
        if not smarts:
            raise MolgfnError(f"filter {item!r}: empty SMARTS (write {kind}=SMARTS, e.g. {kind}=C(=O)N)")
        block = rdBase.BlockLogs()
        query = Chem.MolFromSmarts(smarts)
        del block
        if query is None:
            raise MolgfnError(f"filter {item!r}: invalid SMARTS {smarts!r}")
        return Filter(f"{kind}={smarts}", kind, smarts=smarts, query=query)
    match = _THRESHOLD.match(lowered)
    if match is None:
        raise MolgfnError(f"unknown filter {item!r}; valid filters: {valid_filter_names()}")
    name, operator, value = match.groups()
    prop = PROPERTY_ALIASES.get(name, name)
    if prop not in PROPERTIES and prop not in COLUMN_PROPERTIES:
        raise MolgfnError(
            f"unknown filter {item!r}: no property {name!r}; valid filters: {valid_filter_names()}"
        )
    value = value.strip()
    canonical = f"{name}{operator}{value}"
    if operator == "=":
        bounds = _RANGE.match(value)
        if bounds is None:
            raise MolgfnError(
                f"filter {item!r}: expected a range LOW-HIGH after '=' (e.g. {name}=200-500), got {value!r}"
            )
        low, high = float(bounds.group(1)), float(bounds.group(2))
        if low > high:
            raise MolgfnError(f"filter {item!r}: empty range, LOW {low:g} > HIGH {high:g}")
        return Filter(canonical, "property", prop, "=", low=low, high=high)
    if not re.fullmatch(_NUMBER, value):
        raise MolgfnError(f"filter {item!r}: expected a number after {operator!r}, got {value!r}")
    number = float(value)
    if operator in ("<=", "<"):
        return Filter(canonical, "property", prop, operator, high=number)
    return Filter(canonical, "property", prop, operator, low=number)


_PAINS: list[Pains] = []
_ALERTS: dict[tuple[str, ...], Alerts] = {}


def _alerts(catalogs: tuple[str, ...]) -> Alerts:
    """The reward's alerts component for ``catalogs``, built once (it memoises per SMILES)."""
    if catalogs not in _ALERTS:
        _ALERTS[catalogs] = Alerts(catalogs)
    return _ALERTS[catalogs]


def _pains_catalog() -> Pains:
    """The reward's PAINS component, built once (the catalogue takes a moment; it memoises per SMILES)."""
    if not _PAINS:
        _PAINS.append(Pains())
    return _PAINS[0]


class _Context:
    """What the filters look at, computed lazily and once: parsed molecules, properties, columns."""

    def __init__(
        self,
        batch: MolBatch,
        reference: ReferenceSet | None,
        columns: Mapping[str, Sequence[float]] | None,
    ) -> None:
        self.batch = batch
        self.reference = reference
        self.columns = columns
        self._values: dict[str, np.ndarray] = {}

    def values(self, prop: str, spec: str) -> np.ndarray:
        if prop not in self._values:
            if self.columns is not None and prop in self.columns:
                column = np.asarray(self.columns[prop], dtype=float)
                if column.shape != (len(self.batch),):
                    raise ValueError(f"column {prop!r} has {column.size} values for {len(self.batch)} SMILES")
                self._values[prop] = column
            elif prop in PROPERTIES:
                self._values[prop] = compute_properties(self.batch, [prop])[prop]
            else:
                raise MolgfnError(
                    f"filter {spec!r}: no {prop} values here (they exist only in a molecule table)"
                )
        return self._values[prop]

    def passes(self, flt: Filter) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            if flt.kind == "property":
                values = self.values(flt.prop, flt.spec)
                if flt.operator in _OPERATORS:
                    bound = flt.high if flt.operator in ("<=", "<") else flt.low
                    return _OPERATORS[flt.operator](values, bound)
                return (values >= flt.low) & (values <= flt.high)
            if flt.kind == "lipinski":
                violations = sum(
                    (~(self.values(p, flt.spec) <= limit)).astype(int) for p, limit in LIPINSKI_LIMITS.items()
                )
                return violations <= 1
            if flt.kind == "veber":
                return np.logical_and.reduce(
                    [self.values(p, flt.spec) <= limit for p, limit in VEBER_LIMITS.items()]
                )
        if flt.kind == "pains":
            return _pains_catalog().compute(self.batch) == 1.0
        if flt.kind in ALERT_FILTERS:
            return _alerts(ALERT_FILTERS[flt.kind]).compute(self.batch) == 0.0
        if flt.kind in SUBSTRUCTURE_FILTERS:
            hits = np.array(
                [m is not None and m.HasSubstructMatch(flt.query) for m in self.batch.mols], dtype=bool
            )
            return hits if flt.kind == "has" else ~hits
        if flt.kind == "in_domain":
            from molgfn.candidates.export import in_domain

            missing = [
                c
                for c in ("nearest_train_similarity", "proxy_std")
                if self.columns is None or c not in self.columns
            ]
            if missing:
                raise MolgfnError(
                    "filter 'in_domain' needs the proxy's spread and the nearest training similarity "
                    "(a sample scored with a proxy that has its training set)"
                )
            return in_domain(
                self.values("nearest_train_similarity", flt.spec), self.values("proxy_std", flt.spec)
            )
        if flt.kind == "novel":
            if self.reference is None:
                raise MolgfnError(
                    "filter 'novel' needs the reference (training) molecules; none were given "
                    "(the proxy's training set is the usual reference)"
                )
            return self.reference.is_novel(canonical_smiles(self.batch.mols))
        raise AssertionError(f"unhandled filter kind {flt.kind!r}")  # pragma: no cover


def apply_filters(
    smiles: Sequence[str],
    filters: Sequence[Filter] | str,
    reference_smiles: Sequence[str] | ReferenceSet | None = None,
    columns: Mapping[str, Sequence[float]] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Which molecules pass every filter, and how many each one removed.

    Returns ``(mask, counts)``: ``mask[i]`` is True when ``smiles[i]`` is valid and passes every filter;
    ``counts`` maps 'invalid' and then each filter's spec, in order, to the number of molecules it
    removed among those the earlier ones kept (so the counts add up to ``(~mask).sum()``). A filter set
    that nothing passes gives ``mask.any() == False``. ``columns`` (a dict of arrays or a DataFrame,
    e.g. :func:`molgfn.candidates.export.molecule_table`'s) supplies reward/proxy values and precomputed properties.
    ``filters`` may be a spec string, parsed with :func:`parse_filters`.
    """
    if isinstance(filters, str):
        filters = parse_filters(filters)
    batch = MolBatch.parse(list(smiles))
    reference = ReferenceSet.of(reference_smiles) if reference_smiles is not None else None
    if reference is None and any(f.needs_reference for f in filters):
        raise MolgfnError(
            "filter 'novel' needs the reference (training) molecules; none were given "
            "(the proxy's training set is the usual reference)"
        )
    context = _Context(batch, reference, columns)
    mask = batch.valid.copy()
    counts = {INVALID: int((~mask).sum())}
    for flt in filters:
        keep = np.asarray(context.passes(flt), dtype=bool)
        counts[flt.spec] = int((mask & ~keep).sum())
        mask &= keep
    return mask, counts
