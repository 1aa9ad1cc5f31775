"""The choices of proxy training, named once (light: the command line's help and checks read them).

Column names, units, model families and splits; the modules that implement them import these.
"""

# Column names recognised without options, in order of preference (matched case-insensitively).
SMILES_COLUMNS = ["smiles", "canonical_smiles", "ligand smiles", "smiles_string", "mol"]
LABEL_COLUMNS = [
    "pchembl value",
    "pchembl_value",
    "pki",
    "pic50",
    "pec50",
    "pkd",
    "pk",
    "standard value",
    "standard_value",
    "value",
    "activity",
    "y",
    "label",
]
# Multipliers from a concentration unit to molar; "p" means the labels are already on a p-scale.
UNITS_TO_MOLAR = {"nM": 1e-9, "uM": 1e-6, "µM": 1e-6, "μM": 1e-6, "mM": 1e-3, "M": 1.0}
UNITS = [*UNITS_TO_MOLAR, "p"]
DELIMITERS = ",;\t|"
# model families: a GNN on the molecular graph, a random forest on Morgan fingerprint counts
FAMILIES = ("gnn", "fp")
MODELS = (*FAMILIES, "auto")  # auto keeps the family best on validation
SPLITS = ("scaffold", "random")
