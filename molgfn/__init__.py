"""molgfn: fragment-based GFlowNets for molecular design."""

import warnings

__version__ = "0.1.0"

# torch-geometric scripts a few of its modules with torch.jit.script at import, which torch 2.13 deprecates;
# the warning is about torch-geometric's internals, not about anything a user of molgfn can change
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning)
