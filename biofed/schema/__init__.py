"""The BioFed data standard: JSON Schemas (2020-12), code lists, validation."""
