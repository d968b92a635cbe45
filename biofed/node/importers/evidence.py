"""Sectors and value-chain stages derived from CORDIS evidence, never invented.

ROR and CORDIS carry no sector or value-chain stage. What a project is about
(its topic, programme part, euroSciVoc fields) and how an organisation takes
part (its activity type, the funding scheme, the SME flag) are evidence for
them; `derivations.csv` beside this module is the mapping, one rule a row:

    evidence        what is compared: activity-type (exact), funding-scheme (the scheme
                    or a longer one after `-`), topic, programme, euroscivoc (prefixes)
    value           the value or prefix
    participant     any, SME (the SME flag), or an activity type (PRC, HES, REC, PUB, OTH)
    field, code     sectors or valueChainStages, and the code it gives

A derived field is recorded in the record's `sources`, so that readers can tell
it from a declared one: `{"name": "CORDIS", "licence": ..., "derived": {"fields":
["sectors", "valueChainStages"], "evidence": "CORDIS projects", "count": 4}}`
(derived from 4 CORDIS projects). A field the record already has (declared) is
left as it is.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

RULES_FILE = Path(__file__).with_name("derivations.csv")
EVIDENCE_KINDS = ("activity-type", "funding-scheme", "topic", "programme", "euroscivoc")
FIELDS = ("sectors", "valueChainStages")


@dataclass(frozen=True)
class Rule:
    evidence: str
    value: str
    participant: str
    field: str
    code: str

    def applies(self, project, org) -> bool:
        if self.participant == "SME" and not org.sme:
            return False
        if self.participant not in ("any", "SME") and org.activity_type != self.participant:
            return False
        if self.evidence == "activity-type":
            return org.activity_type == self.value
        if self.evidence == "funding-scheme":
            scheme = project.funding_scheme.strip()
            return scheme == self.value or scheme.startswith(self.value + "-")
        if self.evidence == "topic":
            return any(topic.startswith(self.value) for topic in project.topics)
        if self.evidence == "programme":
            return any(code.startswith(self.value) for code in project.programme_codes)
        return any((path.rstrip("/") + "/").startswith(self.value) for path in project.fields)


@functools.cache
def rules() -> tuple[Rule, ...]:
    """The rules of derivations.csv, checked: known evidence kinds, fields and codes."""
    from biofed.schema.codes import codes

    known = {"sectors": set(codes("sectors")), "valueChainStages": set(codes("value-chain-stages"))}
    loaded = []
    with RULES_FILE.open(encoding="utf-8", newline="") as fh:
        for number, row in enumerate(csv.DictReader(fh), 2):
            rule = Rule(row["evidence"], row["value"], row["participant"], row["field"], row["code"])
            if rule.evidence not in EVIDENCE_KINDS or rule.field not in FIELDS or rule.code not in known[rule.field]:
                raise ValueError(f"{RULES_FILE.name} line {number}: not a valid rule: {row}")
            loaded.append(rule)
    return tuple(loaded)


def derive(evidence: list) -> tuple[dict[str, list[str]], int]:
    """Codes per field from (project, organisation) pairs, and how many projects gave any."""
    found: dict[str, list[str]] = {}
    used = set()
    for project, org in evidence:
        for rule in rules():
            if rule.applies(project, org):
                codes = found.setdefault(rule.field, [])
                if rule.code not in codes:
                    codes.append(rule.code)
                used.add(project.reference)
    return found, len(used)


def add_derived(content: dict, evidence: list) -> dict:
    """Give `content` the sectors and stages its CORDIS projects are evidence of, marked as derived.

    `evidence` is a list of (CordisProject, Organisation): the organisation as it
    takes part in that project. Fields the record already has are kept as declared.
    """
    from biofed.node.importers.cordis import LICENCE, SOURCE_NAME

    found, count = derive(evidence)
    fields = [name for name in FIELDS if found.get(name) and name not in content]
    if not fields:
        return content
    for name in fields:
        content[name] = sorted(found[name])
    content.setdefault("sources", []).append(
        {"name": SOURCE_NAME, "licence": LICENCE,
         "derived": {"fields": fields, "evidence": "CORDIS projects", "count": count}})
    return content
