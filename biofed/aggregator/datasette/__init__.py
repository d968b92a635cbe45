"""Datasette configuration for the public catalogue: metadata.yml, templates, static files and plugins."""

from pathlib import Path

METADATA_PATH = Path(__file__).with_name("metadata.yml")
TEMPLATES_PATH = Path(__file__).with_name("templates")
STATIC_PATH = Path(__file__).with_name("static")
