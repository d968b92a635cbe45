"""The node's settings, kept as data in DIR/node.json."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from biofed.errors import BiofedError
from biofed.files import write_atomic
from biofed.trust.proofs import utc_now

NODE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
REGION = re.compile(r"^[A-Z]{2}[A-Z0-9]{0,3}$")  # NUTS 2021: country + up to 3 characters
DEFAULT_CHECKPOINT_INTERVAL = 300  # protocol.md §5: re-sign at least every 5 minutes

CONFIG_FILE = "node.json"
DATABASE_FILE = "node.db"
KEYS_DIR = "keys"


@dataclass
class NodeConfig:
    id: str
    name: str
    country: str
    region: str | None = None
    baseUrl: str | None = None
    licence: str = "CC-BY-4.0"
    checkpointInterval: int = DEFAULT_CHECKPOINT_INTERVAL
    created: str = field(default_factory=utc_now)

    def __post_init__(self):
        if not isinstance(self.id, str) or not NODE_ID.match(self.id):
            raise BiofedError(f"node id {self.id!r} must match {NODE_ID.pattern} (lower-case letters, digits, '-')")
        if not isinstance(self.name, str) or not self.name.strip():
            raise BiofedError("node name must not be empty")
        if not isinstance(self.country, str) or not COUNTRY.match(self.country):
            raise BiofedError(f"country {self.country!r} must be an ISO 3166-1 alpha-2 code such as DE")
        if self.region is not None and (not REGION.match(self.region) or not self.region.startswith(self.country)):
            raise BiofedError(f"region {self.region!r} must be a NUTS 2021 code of {self.country}, such as {self.country}1")
        if self.baseUrl is not None and not re.match(r"^https?://[^\s/]+", self.baseUrl):
            raise BiofedError(f"base URL {self.baseUrl!r} must start with https:// (or http:// for local tests)")
        if self.baseUrl:
            self.baseUrl = self.baseUrl.rstrip("/")
        if not isinstance(self.licence, str) or not self.licence:
            raise BiofedError("licence must be an SPDX identifier such as CC-BY-4.0")
        if not isinstance(self.checkpointInterval, int) or self.checkpointInterval < 1:
            raise BiofedError(f"checkpointInterval {self.checkpointInterval!r} must be a whole number of seconds >= 1")

    @property
    def origin(self) -> str:
        return f"biofed/node/{self.id}"

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, directory: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        write_atomic(Path(directory) / CONFIG_FILE, text.encode("utf-8"))

    @classmethod
    def load(cls, directory: Path) -> "NodeConfig":
        path = Path(directory) / CONFIG_FILE
        if not path.is_file():
            raise BiofedError(f"{directory}: not a node directory ({CONFIG_FILE} missing; run 'biofed node init' first)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BiofedError(f"{path}: not valid JSON: {exc}") from None
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise BiofedError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise BiofedError(f"{path}: {exc}") from None
        except BiofedError as exc:
            raise BiofedError(f"{path}: {exc}") from None
