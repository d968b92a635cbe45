"""Fuzz the catalogue's URLs: whatever a visitor or a crawler types, the answer is never a 5xx.

Random paths, query strings, Datasette's `_facet`/`_sort`/`_where`/`_search`
on every public table, canned-query parameters and row ids with odd
characters, against the real sample catalogue served by Datasette in-process.
BIOFED_FUZZ_EXAMPLES sets the budget per test (as for the other fuzz suites).
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biofed.aggregator.serve import load_metadata, make_datasette
from support.fuzzing import EXAMPLES
from support.catalogue_sample import build_sample_catalogue

TABLES = [name for name, table in load_metadata()["databases"]["catalogue"]["tables"].items()
          if not table.get("allow") is False]
QUERIES = load_metadata()["databases"]["catalogue"]["queries"]
COLUMNS = ["id", "name", "country", "region", "actor_type", "sector", "stage", "title", "node_id", "actors",
           "specialisation", "nosuch", "rowid", "", "a b", "x'y"]
ODD = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                             HealthCheck.too_slow])


@pytest.fixture(scope="module")
def get(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("fuzz") / "catalogue.db"
    build_sample_catalogue(db_path)
    ds = make_datasette(db_path)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(ds.invoke_startup())

    def fetch(url: str):
        response = loop.run_until_complete(ds.client.get(url))
        assert response.status_code < 500, (url, response.status_code, response.text[:1000])
        return response

    yield fetch
    loop.close()


def test_tables_are_the_public_ones():
    assert {"actors", "projects", "offers", "region_profiles"} <= set(TABLES)
    assert "profile_counts" not in TABLES


@FUZZ
@given(segments=st.lists(ODD, min_size=1, max_size=5), query=st.dictionaries(ODD, ODD, max_size=4),
       suffix=st.sampled_from(["", ".json", ".csv", ".html", "/"]))
def test_random_paths(get, segments, query, suffix):
    path = "/" + "/".join(quote(s, safe="") for s in segments) + suffix
    get(path + ("?" + urlencode(query) if query else ""))


@FUZZ
@given(table=st.sampled_from(TABLES), facets=st.lists(st.sampled_from(COLUMNS), max_size=3),
       sort=st.one_of(st.none(), st.sampled_from(COLUMNS)), desc=st.booleans(),
       where=st.one_of(st.none(), ODD, st.sampled_from(["1=1", "country = 'DE'", "x(", "'; drop table actors; --"])),
       search=st.one_of(st.none(), ODD), filters=st.dictionaries(st.sampled_from(COLUMNS), ODD, max_size=2),
       fmt=st.sampled_from(["", ".json", ".csv"]), size=st.sampled_from([None, "0", "1", "max", "-1", "x"]))
def test_table_parameters(get, table, facets, sort, desc, where, search, filters, fmt, size):
    params = [("_facet", f) for f in facets]
    if sort is not None:
        params.append(("_sort_desc" if desc else "_sort", sort))
    if where is not None:
        params.append(("_where", where))
    if search is not None:
        params.append(("_search", search))
    if size is not None:
        params.append(("_size", size))
    params += list(filters.items())
    get(f"/catalogue/{table}{fmt}?{urlencode(params)}")


@FUZZ
@given(name=st.sampled_from(sorted(QUERIES)), values=st.dictionaries(
    st.sampled_from(["q", "country", "region", "stage", "sector", "partner_region", "technology", "x"]), ODD,
    max_size=4), fmt=st.sampled_from(["", ".json", ".csv"]))
def test_canned_query_parameters(get, name, values, fmt):
    get(f"/catalogue/{name}{fmt}?{urlencode(values)}")


@FUZZ
@given(table=st.sampled_from(["actors", "projects", "offers", "regions", "nodes", "records", "participations"]),
       row_id=ODD, kind=st.sampled_from(["actor", "project", "offer"]), node=ODD, where=ODD, q=ODD)
def test_odd_row_ids_and_people_pages(get, table, row_id, kind, node, where, q):
    get(f"/catalogue/{table}/{quote(row_id, safe='')}")
    get(f"/catalogue/{table}/{quote(row_id, safe='~')}.json")
    get(f"/{quote(node, safe='')}/{kind}/{quote(row_id, safe='')}")
    get(f"/region/{quote(row_id, safe='')}")
    get("/regions?" + urlencode({"country": where}))
    get("/find?" + urlencode({"q": q, "where": where, "stage": row_id, "sector": node, "technology": q}))
