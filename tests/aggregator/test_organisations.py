"""Organisations across nodes: actor records grouped by strong identifiers and sameAs, incrementally."""

from __future__ import annotations

import json
import random
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from biofed.aggregator import catalogue, state

NODES = {n: {"id": n, "name": n.upper(), "licence": "CC-BY-4.0", "base_url": f"https://{n}.example"}
         for n in ("alpha", "beta", "gamma")}
ORGANISATION_TABLES = ("organisations", "organisation_records", "organisation_disagreements", "organisation_sectors",
                       "organisation_value_chain", "organisation_counts")


def actor(record_id: str, name: str, *, city=None, region=None, country="DE", actor_type="sme", **fields) -> dict:
    record = {"id": record_id, "type": "Actor", "version": fields.pop("version", 1),
              "names": [{"value": name, "preferred": True}], "actorType": actor_type, "country": country, **fields}
    if city:
        record["address"] = {"locality": city, "country": country}
    if region:
        record["region"] = region
    return record


def new_catalogue() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    catalogue.ensure_schema(conn)
    return conn


def harvest(conn, records, verified_at="2026-01-01T00:00:00Z") -> None:
    for record in records:
        catalogue.upsert_record(conn, record, node=NODES[record["id"].split("/")[0]], verified_at=verified_at)
    catalogue.finalise(conn)


def groups(conn) -> set[frozenset]:
    found: dict[str, set] = {}
    for actor_id, organisation_id in conn.execute("SELECT actor_id, organisation_id FROM organisation_records"):
        found.setdefault(organisation_id, set()).add(actor_id)
    return {frozenset(ids) for ids in found.values()}


def snapshot(conn) -> dict:
    return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in ORGANISATION_TABLES}


def full_recompute(conn) -> dict:
    conn.execute("DELETE FROM catalogue_state WHERE name = 'incremental'")
    catalogue.finalise(conn)
    return snapshot(conn)


# --- the known hard cases ------------------------------------------------------------------------

def test_same_pic_different_names_is_one_organisation():
    conn = new_catalogue()
    harvest(conn, [actor("alpha/actor/pic-999881918", "UNIVERSITAET HEIDELBERG", identifiers={"pic": "999881918"}),
                   actor("beta/actor/uni-hd", "Ruprecht-Karls-Universität Heidelberg", actor_type="university",
                         identifiers={"pic": "999881918"})])
    assert groups(conn) == {frozenset({"alpha/actor/pic-999881918", "beta/actor/uni-hd"})}
    row = conn.execute("SELECT id, records, nodes, node_ids, pic, disagreements FROM organisations").fetchone()
    assert row == ("alpha/actor/pic-999881918", 2, 2, "alpha, beta", "999881918", "name, actor_type")
    assert dict(conn.execute("SELECT actor_id, shared_keys FROM organisation_records")) == {
        "alpha/actor/pic-999881918": "pic:999881918", "beta/actor/uni-hd": "pic:999881918"}


def test_same_name_in_different_cities_is_two_organisations():
    conn = new_catalogue()
    harvest(conn, [actor("alpha/actor/red-cross-munich", "Rotkreuzklinikum", city="München", region="DE21"),
                   actor("beta/actor/red-cross-wurzburg", "Rotkreuzklinikum", city="Würzburg", region="DE26")])
    assert len(groups(conn)) == 2
    assert conn.execute("SELECT count(*) FROM organisations").fetchone() == (2,)


def test_a_university_and_its_hospital_sharing_a_domain_are_two_organisations():
    conn = new_catalogue()
    harvest(conn, [actor("alpha/actor/uni", "Universität Musterstadt", actor_type="university",
                         website="https://www.uni-musterstadt.example", identifiers={"ror": "https://ror.org/0abcde012"}),
                   actor("alpha/actor/klinikum", "Universitätsklinikum Musterstadt", actor_type="hospital",
                         website="https://uni-musterstadt.example/klinikum"),
                   actor("beta/actor/klinikum", "Universitaetsklinikum Musterstadt", actor_type="hospital",
                         website="https://www.uni-musterstadt.example")])
    assert len(groups(conn)) == 3  # a domain alone never groups records


def test_capitals_and_ror_spellings_of_one_identifier_group():
    conn = new_catalogue()
    harvest(conn, [actor("alpha/actor/a", "UNIVERSITAET ULM", identifiers={"ror": "https://ror.org/032000t02"}),
                   actor("beta/actor/b", "Universität Ulm", identifiers={"ror": "https://ror.org/032000T02/"}),
                   actor("gamma/actor/c", "Ulm University", identifiers={"vat": "DE811279546"}),
                   actor("beta/actor/d", "Universität Ulm (Verwaltung)", identifiers={"vat": "DE811279546",
                                                                                      "wikidata": "Q153978"})])
    assert groups(conn) == {frozenset({"alpha/actor/a", "beta/actor/b"}), frozenset({"gamma/actor/c", "beta/actor/d"})}


def test_a_company_on_two_nodes_with_different_sectors_shows_the_disagreement():
    conn = new_catalogue()
    harvest(conn, [actor("alpha/actor/neckar-cell", "Neckar Cell GmbH", region="DE11", sectors=["red-biotech"],
                         identifiers={"vat": "DE123456789"}),
                   actor("beta/actor/neckarcell", "Neckar Cell", region="DE11", sectors=["red-biotech", "medtech"],
                         identifiers={"vat": "DE123456789"})])
    row = conn.execute("SELECT id, records, sectors, disagreements FROM organisations").fetchone()
    assert row == ("alpha/actor/neckar-cell", 2, "medtech, red-biotech", "name, sectors")
    assert conn.execute("SELECT actor_id, node_id, value FROM organisation_disagreements WHERE field = 'sectors'"
                        " ORDER BY actor_id").fetchall() == [("alpha/actor/neckar-cell", "alpha", "red-biotech"),
                                                             ("beta/actor/neckarcell", "beta", "medtech, red-biotech")]
    # counted once: one organisation in DE11, red biotech once
    assert conn.execute("SELECT organisations FROM organisation_counts WHERE region = 'DE11' AND dimension = ''"
                        ).fetchone() == (1,)
    assert conn.execute("SELECT organisations FROM organisation_counts WHERE region = 'DE11' AND value = 'red-biotech'"
                        ).fetchone() == (1,)
    assert conn.execute("SELECT actors FROM profile_counts WHERE region = 'DE11' AND dimension = ''").fetchone() == (2,)


def test_same_as_groups_records_either_way_and_before_the_other_is_harvested():
    conn = new_catalogue()
    harvest(conn, [actor("alpha/actor/x", "X", sameAs=["beta/actor/x"])])
    assert groups(conn) == {frozenset({"alpha/actor/x"})}
    harvest(conn, [actor("beta/actor/x", "X Labs"), actor("gamma/actor/y", "Y", sameAs=["beta/actor/x"])])
    assert groups(conn) == {frozenset({"alpha/actor/x", "beta/actor/x", "gamma/actor/y"})}
    catalogue.delete_records(conn, ["beta/actor/x"])
    catalogue.finalise(conn)
    # both still name the same record: still one organisation
    assert groups(conn) == {frozenset({"alpha/actor/x", "gamma/actor/y"})}


def test_changing_an_identifier_splits_the_organisation():
    conn = new_catalogue()
    harvest(conn, [actor("alpha/actor/a", "A", identifiers={"pic": "999000001"}),
                   actor("beta/actor/a", "A", identifiers={"pic": "999000001"})])
    assert len(groups(conn)) == 1
    harvest(conn, [actor("beta/actor/a", "A", version=2, identifiers={"pic": "999000002"})])
    assert len(groups(conn)) == 2
    assert conn.execute("SELECT sum(records), count(*) FROM organisations").fetchone() == (2, 2)


# --- incremental = full ------------------------------------------------------------------------------

def _random_actor(rng: random.Random, node: str, i: int, version: int) -> dict:
    identifiers = {}
    for kind, values in (("pic", [f"99900000{n}" for n in range(6)]), ("ror", [f"https://ror.org/0{n}aaaa00" for n in range(4)]),
                         ("vat", ["DE100", "FR200", "de 100"]), ("wikidata", ["Q1", "Q2"])):
        if rng.random() < 0.3:
            identifiers[kind] = rng.choice(values)
    record = actor(f"{node}/actor/{i}", f"Actor {i} v{version}", version=version,
                   region=rng.choice(["DE11", "FR10", None]), country="DE",
                   actor_type=rng.choice(["sme", "university"]),
                   sectors=rng.sample(["red-biotech", "medtech", "pharma"], rng.randint(0, 2)),
                   valueChainStages=rng.sample(["training", "production"], rng.randint(0, 2)), identifiers=identifiers)
    if record.get("region") == "FR10":
        record["country"] = "FR"
    if rng.random() < 0.15:
        record["sameAs"] = [f"{rng.choice(list(NODES))}/actor/{rng.randrange(12)}"]
    return record


def test_incremental_grouping_equals_a_full_recompute():
    rng = random.Random(17)
    conn = new_catalogue()
    harvest(conn, [_random_actor(rng, node, i, 1) for node in NODES for i in range(12)])
    version = 1
    for step in range(60):
        version += 1
        for _ in range(rng.randint(1, 4)):
            node, i = rng.choice(list(NODES)), rng.randrange(12)
            if rng.random() < 0.75:
                catalogue.upsert_record(conn, _random_actor(rng, node, i, version), node=NODES[node],
                                        verified_at="2026-02-01T00:00:00Z")
            else:
                catalogue.delete_records(conn, [f"{node}/actor/{i}"])
        catalogue.finalise(conn)
        incremental = snapshot(conn)
        assert full_recompute(conn) == incremental, f"step {step}"
    assert any(n > 1 for (n,) in conn.execute("SELECT records FROM organisations")), "some groups formed"


# --- order independence --------------------------------------------------------------------------------

_RECORDS = [_random_actor(random.Random(seed), node, i, 1)
            for seed, (node, i) in enumerate((n, i) for n in NODES for i in range(8))]


@settings(max_examples=40, deadline=None)
@given(order=st.permutations(list(range(len(_RECORDS)))), pages=st.integers(min_value=1, max_value=6),
       first=st.sampled_from(list(NODES)))
def test_grouping_is_independent_of_harvest_order_and_of_the_first_node(order, pages, first):
    reference = new_catalogue()
    harvest(reference, _RECORDS)  # one harvest, record order as listed
    conn = new_catalogue()
    records = [_RECORDS[i] for i in order]
    records.sort(key=lambda r: r["id"].split("/")[0] != first)  # that node's records first
    size = -(-len(records) // pages)
    for start in range(0, len(records), size):  # several harvests, each finalised
        harvest(conn, records[start:start + size])
    assert snapshot(conn) == snapshot(reference)


# --- a catalogue written before the organisations ------------------------------------------------------

def test_an_older_catalogue_gets_its_keys_and_organisations_from_the_signed_records(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    state.ensure_schema(conn)
    catalogue.ensure_schema(conn)
    records = [actor("alpha/actor/neckar", "Neckar Cell GmbH", region="DE11", sectors=["red-biotech"],
                     identifiers={"vat": "DE123456789"}),
               actor("beta/actor/neckar", "Neckar Cell", region="DE11", sectors=["medtech"],
                     identifiers={"vat": "DE 123 456 789"}),
               actor("gamma/actor/x", "X", sameAs=["alpha/actor/x"]),
               actor("alpha/actor/x", "X Labs", identifiers={"ror": "https://ror.org/032000t02"}),
               actor("beta/actor/x", "X Labs (Ulm)", identifiers={"ror": "032000T02"})]
    conn.execute("BEGIN")
    for record in records:
        node = record["id"].split("/")[0]
        catalogue.upsert_record(conn, record, node=NODES[node], verified_at="2026-01-01T00:00:00Z")
        if record["id"] != "beta/actor/x":  # one actor whose signed record is not held: its row's columns
            conn.execute("INSERT INTO records (id, node_id, type, version, signed_json) VALUES (?, ?, 'Actor', 1, ?)",
                         (record["id"], node, json.dumps(record)))
    catalogue.finalise(conn)
    conn.execute("COMMIT")
    expected = snapshot(conn)
    assert groups(conn) == {frozenset({"alpha/actor/neckar", "beta/actor/neckar"}),
                            frozenset({"alpha/actor/x", "beta/actor/x", "gamma/actor/x"})}
    # The same catalogue as a version before the organisations wrote it: no organisation tables at all.
    for name, kind in conn.execute("SELECT name, type FROM sqlite_master WHERE name LIKE 'organisation%'"
                                   " AND type IN ('table', 'view')").fetchall():
        conn.execute(f"DROP {kind.upper()} [{name}]")
    catalogue.ensure_schema(conn)  # the next harvest's first step: keys from the records, then grouped
    assert conn.execute("SELECT count(*) FROM organisation_keys").fetchone()[0] == 5
    assert snapshot(conn) == expected
    assert full_recompute(conn) == expected
    assert catalogue.ensure_schema(conn) is None and snapshot(conn) == expected  # once: nothing to migrate now


def test_organisation_counts_without_the_with_data_rows_are_counted_again():
    conn = new_catalogue()
    harvest(conn, [actor("alpha/actor/a", "A", region="DE11", sectors=["medtech"], identifiers={"pic": "999000001"}),
                   actor("beta/actor/a", "A", region="DE11", sectors=["pharma"], identifiers={"pic": "999000001"})])
    expected = snapshot(conn)
    conn.execute("DELETE FROM organisation_counts WHERE dimension != '' AND value = ''")  # as the first version wrote it
    catalogue.ensure_schema(conn)
    assert snapshot(conn) == expected
    assert conn.execute("SELECT organisations FROM organisation_counts WHERE region = 'DE11' AND dimension = 'sector'"
                        " AND value = ''").fetchone() == (1,)
