"""The catalogue's pages for people, on the real signed sample, Datasette in-process.

Every figure asserted here is counted by hand from tests/support/catalogue_sample.py.
"""

from __future__ import annotations

import asyncio
import html
import re
import sqlite3

import pytest

from biofed.aggregator.serve import make_datasette
from support.catalogue_sample import HTML_NAME, STALE_SINCE, build_sample_catalogue


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("pages") / "catalogue.db"
    build_sample_catalogue(db_path)
    ds = make_datasette(db_path, tiles="https://tiles.example/{z}/{x}/{y}.png", tiles_attribution="© Example tiles")
    loop = asyncio.new_event_loop()

    def get(path, **kwargs):
        return loop.run_until_complete(ds.client.get(path, **kwargs))

    yield {"get": get, "db_path": db_path}
    loop.close()


def page(site, path, **kwargs) -> str:
    response = site["get"](path, **kwargs)
    assert response.status_code == 200, (path, response.status_code, response.text[:2000])
    return response.text


def text(markup: str) -> str:
    """The page's visible text, whitespace collapsed (scripts and tags dropped)."""
    markup = re.sub(r"<script.*?</script>", " ", markup, flags=re.S)
    collapsed = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()
    return re.sub(r" ([,.:;])", r"\1", collapsed)


@pytest.mark.parametrize("path", ["/a/b/c/d", "/no/such/page", "/nosuch/actor/x", "/genopole/actor/nobody",
                                  "/genopole/project/none", "/genopole/offer/none", "/region/ZZ9", "/catalogue/nosuch",
                                  "/catalogue/actors/nosuch", "/-/nosuch", "/x.y/z/w/v"])
def test_unknown_urls_answer_404_not_500(site, path):
    """Datasette 0.65 with rich installed answered 500 for a URL no route matches (print_exception outside except)."""
    response = site["get"](path)
    assert response.status_code == 404, response.text[:500]
    assert "Page not found" in response.text and 'href="/find"' in response.text
    assert site["get"](path + ".json").status_code == 404


def test_home_counts_by_hand(site):
    markup = page(site, "/")
    counts = dict(re.findall(r'data-count="(\w+)">([^<]*)<', markup))
    # 8 actors signed, 1 deleted: 7 records, no two sharing an identifier, so 7 organisations; 2 projects;
    # 2 offers; 3 nodes; organisations in DE, FR, DK; no harvest run recorded
    assert counts == {"organisations": "7", "actors": "7", "projects": "2", "offers": "2", "nodes": "3",
                      "countries": "3", "harvested": "not yet"}
    conn = sqlite3.connect(site["db_path"])
    assert conn.execute("SELECT count(*) FROM actors").fetchone()[0] == 7
    conn.close()
    assert 'action="/find"' in markup and 'name="q"' in markup and 'name="where"' in markup and 'name="stage"' in markup
    assert "Germany" in markup and "Research and development" in markup


def test_front_door_answers_with_actors_offers_projects_and_clusters(site):
    found = text(page(site, "/find?q=mrna"))
    assert "CureVac SE" in found and "mRNA process development" in found and "Tübingen mRNA training school" in found
    cluster = page(site, "/find?q=Genopole")
    assert "Genopole" in text(cluster) and 'href="/catalogue/actors?node_id=genopole"' in cluster
    staged = page(site, "/find?where=DE&stage=production")
    assert 'href="/bioregio-stern/actor/curevac"' in staged and "uni-tuebingen" not in staged
    assert 'href="/genopole/actor/genethon"' in page(site, "/find?where=FR10&q=")
    assert 'href="/bioregio-stern/actor/uni-tuebingen"' in page(site, "/find?technology=CRISPR")
    assert "No actor matches." in page(site, "/find?q=zzzznothing")
    # hostile query text is data
    assert site["get"]("/find?q=%22unbalanced+OR+NEAR(&where=%27;drop").status_code == 200


def test_actor_profile(site):
    markup = page(site, "/bioregio-stern/actor/curevac")
    assert "<title>CureVac SE · BioFed</title>" in markup and "<h1>CureVac SE</h1>" in markup
    visible = text(markup)
    assert "Large company in Tübingen, Tübingen, Germany" in visible
    assert 'href="/region/DE14"' in markup
    assert 'href="/find?sector=pharma"' in markup and 'href="/find?stage=production"' in markup
    assert 'href="/find?technology=mRNA"' in markup
    # its projects, with their partners linked across nodes, and its offer
    assert 'href="/genopole/project/cobioe"' in markup and 'href="/dlsc/actor/novo"' in markup
    assert "Fundación Ejemplo de Biotecnología (ES)" in visible
    assert 'href="/bioregio-stern/offer/mrna-process"' in markup
    assert ">999000001</a>" in markup and 'href="https://www.curevac.com"' in markup
    # provenance
    assert "BioRegio STERN" in visible and "CC-BY-4.0" in visible and "biofed verify record.json" in markup
    assert 'href="https://bioregio-stern.example/records/bioregio-stern/actor/curevac"' in markup
    assert '"lat": 48.536' in markup and 'data-tiles="https://tiles.example/{z}/{x}/{y}.png"' in markup


def test_actor_without_sectors_and_stale_actor(site):
    stale = text(page(site, "/dlsc/actor/dtu"))
    assert f"Stale since {STALE_SINCE}" in stale or f"stale since {STALE_SINCE}".lower() in stale.lower()
    assert "Also known as: Technical University of Denmark" in stale
    hostile = page(site, "/bioregio-stern/actor/script-labs")
    assert HTML_NAME not in hostile and "&lt;script&gt;alert(" in hostile


def test_description_in_the_visitors_language(site):
    assert "Gene therapy laboratory." in page(site, "/genopole/actor/genethon")
    french = page(site, "/genopole/actor/genethon", headers={"accept-language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert 'lang="fr">Laboratoire de thérapie génique.' in french
    assert "Gene therapy laboratory." in page(site, "/genopole/actor/genethon", headers={"accept-language": "da"})
    assert "University in Tübingen." in page(site, "/bioregio-stern/actor/uni-tuebingen", headers={"accept-language": "it"})
    assert "Universität in Tübingen." in page(site, "/bioregio-stern/actor/uni-tuebingen",
                                              headers={"accept-language": "de-CH, en;q=0.3"})


def test_project_profile(site):
    markup = page(site, "/genopole/project/cobioe")
    visible = text(markup)
    assert "<h1>COBIOE: Growing connection for bio ecosystems</h1>" in markup
    assert "Horizon Europe" in visible and "2023-03-01 to 2025-02-28" in visible
    assert "Total budget €1,234,567.89" in visible and "EU contribution €1,000,000" in visible
    rows = re.findall(r"<tr>(.*?)</tr>", markup, flags=re.S)[1:]
    partners = [text(r) for r in rows]
    assert partners == [
        "Généthon Coordinator France Ile-de-France",
        "CureVac SE on bioregio-stern Partner (beneficiary) Germany Tübingen",
        "Danmarks Tekniske Universitet on dlsc Partner (beneficiary) Denmark Hovedstaden",
        "Novo Nordisk A/S on dlsc Partner (beneficiary) Denmark Hovedstaden",
        "Fundación Ejemplo de Biotecnología Partner (beneficiary) Spain",
    ]
    assert 'href="/dlsc/actor/dtu"' in markup and "/actor/fundaci" not in markup
    assert markup.count('"lat":') == 4  # the four resolved partners on the map


def test_offer_profile(site):
    markup = page(site, "/bioregio-stern/offer/mrna-process")
    visible = text(markup)
    assert "<h1>mRNA process development</h1>" in markup and "Service offered by CureVac SE" in visible
    assert 'href="/find?technology=lipid%20nanoparticles"' in markup
    assert "Published and signed by BioRegio STERN" in visible


def test_region_profile(site):
    markup = page(site, "/region/DE14")
    visible = text(markup)
    assert "<h1>Tübingen</h1>" in markup and "NUTS 2 region DE14 in Germany · 2 actors" in visible
    assert "Based on 2 of 2 organisations with sector data here, and 7 in Europe." in visible
    assert "Too few to compare" in visible
    # the table beside the chart: red biotech 2 here (100 %), 4 in Europe (4 of 7 = 57 %)
    assert "Red biotechnology 2 100% 4 57% too few" in visible
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="biofed-chart" role="img"' in markup
    # cross-border links: the COBIOE partners in DK01, ES and FR10
    assert "Hovedstaden, Denmark: 1 project" in visible and "Spain: 1 project" in visible
    assert 'href="/bioregio-stern/offer/mrna-process"' in markup
    assert page(site, "/region/de14") == markup  # codes are case-insensitive
    assert "Sub-regions:" in text(page(site, "/region/DE1"))


def test_table_cells_are_readable_and_json_keeps_values(site):
    projects = page(site, "/catalogue/projects")
    assert "€1,234,567.89" in projects and "1234567.89" not in text(projects)
    actors = page(site, "/catalogue/actors")
    assert '<span title="DE">Germany</span>' in actors
    assert 'href="/bioregio-stern/actor/curevac">CureVac SE</a>' in actors
    assert '<a href="/region/DE14" title="DE14">Tübingen</a>' in actors
    assert "<details class=\"column-descriptions-folded\">" in actors
    parts = page(site, "/catalogue/participations")
    assert 'href="/dlsc/actor/dtu">Danmarks Tekniske Universitet</a>' in parts
    data = site["get"]("/catalogue/projects.json?_shape=array").json()
    assert {p["total_budget_eur"] for p in data} == {1234567.89, None}
    assert {a["country"] for a in site["get"]("/catalogue/actors.json?_shape=array").json()} == {"DE", "FR", "DK"}


def test_tiles_setting_reaches_the_cluster_map(site):
    assert "https://tiles.example/{z}/{x}/{y}.png" in page(site, "/catalogue/actors")
