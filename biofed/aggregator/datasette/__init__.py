"""Datasette configuration for the public catalogue, kept as data (metadata.yml) plus one plugin."""

from pathlib import Path

METADATA_PATH = Path(__file__).with_name("metadata.yml")
