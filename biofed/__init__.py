"""BioFed: a federated open-data network for Europe's life-science clusters."""

__version__ = "0.1.0"
