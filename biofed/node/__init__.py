"""The BioFed node: storage, signing, log, feeds, write API, importers."""
