"""Vocabulary parsing: stem symmetry groups, the file format, and the per-vocabulary lookup tables."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem

from molgfn.chem.vocab import load_vocabulary, make_fragment, parse_vocabulary, vocabulary_from_smiles
from molgfn.errors import MolgfnError


def true_stem_group(frag) -> tuple[tuple[int, ...], ...]:
    """Ground truth by brute force, independent of substructure matching: a stem permutation g is a
    symmetry when labelling stem g[i] with i (as a dummy isotope) gives the same canonical molecule as
    labelling stem i with i. Hydrogens, charges and aromaticity all enter the canonical SMILES."""
    n = frag.n_stems

    def labelled(label_of_stem: list[int]) -> str:
        return Chem.CanonSmiles(frag.template.format(*(f"[{label_of_stem[s] + 1}*]" for s in range(n))))

    identity = labelled(list(range(n)))
    group = []
    for g in itertools.permutations(range(n)):
        label = [0] * n
        for i in range(n):
            label[g[i]] = i
        if labelled(label) == identity:
            group.append(g)
    return tuple(sorted(group))


@pytest.mark.parametrize(
    ("smiles", "order", "classes"),
    [
        ("*N(*)*", 6, 1),
        ("[*]N([*])[*]", 6, 1),
        ("*c1ccc(*)cc1", 2, 1),  # para
        ("*c1cccc(*)c1", 2, 1),  # meta
        ("*c1ccccc1*", 2, 1),  # ortho
        ("*C(*)=O", 2, 1),
        ("*O*", 2, 1),
        ("*c1ccc(*)c(*)c1", 1, 3),  # 1,2,4: no two stems equivalent
        ("*CC(*)C", 1, 2),
        ("*C(C)(C)*", 2, 1),
        ("*c1ccccc1", 1, 1),
        ("*N1CCN(*)CC1", 2, 1),
        ("*C1CCN(*)CC1", 1, 2),
    ],
)
def test_stem_group_of_known_fragments(smiles, order, classes):
    frag = make_fragment(smiles)
    assert frag.group_order == order
    assert len(set(frag.stem_class)) == classes
    assert frag.stem_group == true_stem_group(frag)
    # a group: contains the identity and is closed under composition
    assert tuple(range(frag.n_stems)) in frag.stem_group
    group = set(frag.stem_group)
    assert all(tuple(g[h[i]] for i in range(frag.n_stems)) in group for g in group for h in group)


@pytest.mark.parametrize(
    "smiles",
    [
        "*c1nc[nH]c1*",  # 1H-imidazole-4,5-diyl: the NH makes the two carbons different
        "*c1cc(*)n[nH]1",  # 1H-pyrazole-3,5-diyl
        "*c1n[nH]c(*)n1",  # 1H-1,2,4-triazole-3,5-diyl
    ],
)
def test_atoms_differing_only_in_hydrogen_count_are_not_equivalent(smiles):
    # capping one stem or the other with Cl gives two different molecules, so the stems must differ
    frag = make_fragment(smiles)
    caps = {
        Chem.CanonSmiles(frag.template.format(*("Cl" if s == i else "[H]" for s in range(2))))
        for i in range(2)
    }
    assert len(caps) == 2
    assert frag.group_order == 1
    assert frag.stem_group == true_stem_group(frag)


def test_shipped_stem_groups_match_brute_force():
    for name in ("tiny", "default"):
        for frag in load_vocabulary(name).fragments:
            assert frag.stem_group == true_stem_group(frag), frag.smiles


def test_stems_are_numbered_canonically_whatever_the_input_spelling():
    a = make_fragment("[*]C1CCN([*])CC1")
    b = make_fragment("N1([1*])CCC([2*])CC1")
    assert a == b
    assert a.smiles == "*C1CCN(*)CC1"
    assert make_fragment("[*:3]c1ccccc1").smiles == make_fragment("c1ccccc1*").smiles == "*c1ccccc1"


def test_triple_bond_is_not_a_comment_and_names_follow_the_smiles():
    text = "# molgfn-vocabulary 1\n# a header comment\n*C#N   nitrile   # trailing comment\n[*]C#C[*]\n*C(F)(F)F  CF3\n"
    vocab = parse_vocabulary(text, source="x.txt")
    assert [f.smiles for f in vocab.fragments] == ["*C#N", "*C#C*", "*C(F)(F)F"]
    assert [f.name for f in vocab.fragments] == ["nitrile", "", "CF3"]
    assert vocab.header == ["# molgfn-vocabulary 1", "# a header comment"]
    assert vocab[0].n_atoms == 2 and vocab[1].n_stems == 2 and vocab[1].group_order == 2
    # the text written back parses to the same vocabulary
    again = parse_vocabulary(vocab.to_text())
    assert [(f.smiles, f.name) for f in again.fragments] == [(f.smiles, f.name) for f in vocab.fragments]


def test_tables_are_consistent():
    vocab = vocabulary_from_smiles(["*C", "*N(*)*", "*c1ccc(*)c(*)c1", "*C(*)=O", "*CC(*)C"])
    n = [1, 3, 3, 2, 2]
    assert vocab.n_stems.tolist() == n
    assert vocab.max_stems == 3
    table = vocab.stem_table
    assert table.shape == (sum(n), 2)
    assert table.tolist() == [[f, s] for f in range(5) for s in range(n[f])]
    assert vocab.stem_offset.tolist() == [0, 1, 4, 7, 9]
    for f in range(len(vocab)):
        assert table[vocab.stem_offset[f]].tolist() == [f, 0]
    classes = vocab.stem_class_table
    assert classes.shape == (5, 3)
    # methyl: 1 class; amine: 1 class (3 stems); 1,2,4-benzene: 3 classes; carbonyl: 1; propane-1,2-diyl: 2
    assert classes.tolist() == [[0, -1, -1], [1, 1, 1], [2, 3, 4], [5, 5, -1], [6, 7, -1]]
    assert vocab.n_stem_classes == 8
    # equal class id <=> same fragment and same orbit of its stem group
    for (f1, s1), (f2, s2) in itertools.combinations(table.tolist(), 2):
        same = f1 == f2 and vocab[f1].stem_class[s1] == vocab[f2].stem_class[s2]
        assert (classes[f1, s1] == classes[f2, s2]) == same


def test_default_vocabulary_tables():
    vocab = load_vocabulary("default")
    assert len(vocab) == 100
    assert len(vocab.stem_table) == int(vocab.n_stems.sum())
    assert np.all(vocab.stem_table[vocab.stem_offset, 1] == 0)
    assert np.all(np.diff(vocab.stem_offset) == vocab.n_stems[:-1])
    assert (vocab.stem_class_table >= 0).sum() == len(vocab.stem_table)
    assert set(np.unique(vocab.stem_class_table[vocab.stem_class_table >= 0])) == set(
        range(vocab.n_stem_classes)
    )
    assert 1 <= vocab.n_stems.min() and vocab.max_stems <= 3


@pytest.mark.parametrize(
    ("smiles", "message"),
    [
        ("CCO", "has no stems"),
        ("*", "no real atoms"),
        ("*=C", "single bond"),
        ("**", "no real atoms"),
        ("*C.*C", "not connected"),
        ("C1CC1(", "cannot parse"),
    ],
)
def test_invalid_fragments(smiles, message):
    with pytest.raises(MolgfnError, match=message):
        make_fragment(smiles, where="v.txt:7")
    with pytest.raises(MolgfnError, match=r"^v\.txt:7: "):
        make_fragment(smiles, where="v.txt:7")


def test_the_documented_example_vocabulary_parses():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "fragments.md").read_text()
    example = re.search(r"```text\n(.*?)```", doc, re.S).group(1)
    vocab = parse_vocabulary(example)
    assert [f.name for f in vocab.fragments] == ["methyl", "nitrile", "amine", "para-phenylene"]
    assert vocab.n_stems.tolist() == [1, 1, 3, 2]
    assert [f.group_order for f in vocab.fragments] == [1, 1, 6, 2]


def test_atom_maps_on_real_atoms_are_dropped():
    # a map number is a label, not chemistry: it must not make a new fragment or reach assembled molecules
    from molgfn.chem.tree import Add, First, Tree, tree_smiles

    assert make_fragment("[*]C[CH3:7]").smiles == make_fragment("[*]CC").smiles == "*CC"
    vocab = vocabulary_from_smiles(["[*:1]C[CH3:1]", "[*]O[*]"])
    ether = Tree().add(First(1)).add(Add(0, 0, 0, 0)).add(Add(0, 1, 0, 0))
    assert tree_smiles(ether, vocab) == "CCOCC"
    with pytest.raises(MolgfnError, match="duplicate"):
        vocabulary_from_smiles(["[*]CC", "[*]C[CH3:2]"])
    # isotopes on real atoms are chemistry and stay
    assert make_fragment("[*]C[13CH3]").smiles == "*C[13CH3]"
