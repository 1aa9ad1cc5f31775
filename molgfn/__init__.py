"""molgfn: fragment-based GFlowNets for molecular design."""

__version__ = "0.1.0"
