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
    # cross-border links: the COBIOE partners in DK01, ES and FR10 (test_region_page_maps_its_links)
    assert "Hovedstaden Denmark 1" in visible and "(region not known) Spain 1" in visible
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


# --- cross-border links between regions ---------------------------------------------------------------
# By hand from the sample: COBIOE has Généthon (FR10), CureVac (DE14), DTU and Novo Nordisk (both resolved
# to DK01: by ROR and by PIC) and a Spanish partner on no node with no region (ES). The Tübingen training
# school has two German partners: not cross-border. DTU and Novo are in the same country: no link.
LINKS_BY_HAND = {
    ("DE14", "DK01", "DK01", "DK", 1), ("DE14", "ES", None, "ES", 1), ("DE14", "FR10", "FR10", "FR", 1),
    ("DK01", "DE14", "DE14", "DE", 1), ("DK01", "ES", None, "ES", 1), ("DK01", "FR10", "FR10", "FR", 1),
    ("FR10", "DE14", "DE14", "DE", 1), ("FR10", "DK01", "DK01", "DK", 1), ("FR10", "ES", None, "ES", 1),
}


def test_region_links_by_hand(site):
    conn = sqlite3.connect(site["db_path"])
    rows = set(conn.execute("SELECT region, partner_place, partner_region, partner_country, projects FROM region_links"))
    conn.close()
    assert rows == LINKS_BY_HAND
    data = site["get"]("/catalogue/region_links.json?region=FR10&_shape=array").json()
    assert [(r["partner_place"], r["projects"]) for r in data] == [("DE14", 1), ("DK01", 1), ("ES", 1)]


def _islands(markup: str) -> tuple[list, list]:
    import json

    markers = json.loads(html.unescape(re.search(r'class="biofed-map-markers">(.*?)</script>', markup, re.S)[1]))
    links = json.loads(html.unescape(re.search(r'class="biofed-map-links">(.*?)</script>', markup, re.S)[1]))
    return markers, links


def test_region_page_maps_its_links(site):
    markup = page(site, "/region/DE14")
    section = markup[markup.index('id="links-title"'):markup.index('id="actors-title"')]
    rows = [text(r) for r in re.findall(r"<tr>(.*?)</tr>", section, flags=re.S)[1:]]
    # strongest first, then by place code: every link is one project here
    assert rows == ["Hovedstaden Denmark 1", "(region not known) Spain 1", "Ile-de-France France 1"]
    assert 'href="/catalogue/collaborations_between_regions?region=DE14&amp;partner_region=ES"' in section
    markers, links = _islands(section)
    conn = sqlite3.connect(site["db_path"])
    centre = {code: [lat, lon] for code, lat, lon in conn.execute("SELECT code, latitude, longitude FROM regions")}
    spain = [sum(c) / len(c) for c in zip(*conn.execute(
        "SELECT latitude, longitude FROM regions WHERE level = 1 AND country = 'ES'"))]
    conn.close()
    assert markers == [{"lat": centre["DE14"][0], "lon": centre["DE14"][1], "title": "Tübingen", "url": None,
                        "detail": "this region"}]
    # one line per place, from Tübingen's centre; a country without a known region at its NUTS 1 mean
    assert [(l["from"], l["to"], l["title"], l["url"], l["detail"], l["weight"]) for l in links] == [
        (centre["DE14"], centre["DK01"], "Hovedstaden, Denmark", "/region/DK01", "1 shared project", 8.0),
        (centre["DE14"], spain, "Spain", None, "1 shared project", 8.0),
        (centre["DE14"], centre["FR10"], "Ile-de-France, France", "/region/FR10", "1 shared project", 8.0),
    ]
    stuttgart = page(site, "/region/DE11")
    assert "No cross-border project with a partner placed in this region." in text(stuttgart)


def test_regions_index(site):
    markup = page(site, "/regions")
    assert 'href="/regions">Regions</a>' in markup  # the site's navigation leads here
    table = markup[markup.index('id="regions-table"'):]
    rows = [text(r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S)[1:]]
    # actors (the closed Danish one deleted), with sector and stage data, index, places abroad; by country name
    assert rows == [
        "Hovedstaden DK01 Denmark 2 2 2 too few 3",
        "Ile-de-France FR10 France 2 2 2 too few 3",
        "Stuttgart DE11 Germany 1 1 1 too few 0",
        "Tübingen DE14 Germany 2 2 2 too few 3",
    ]
    assert "4 regions" in text(markup)
    strongest = markup[markup.index('id="strongest-table"'):markup.index('id="list-title"')]
    pairs = [text(r) for r in re.findall(r"<tr>(.*?)</tr>", strongest, flags=re.S)[1:]]
    # each pair of regions once (both ways stored), a country-only partner from each region
    assert pairs == [
        "Tübingen, Germany Hovedstaden, Denmark 1", "Tübingen, Germany Spain (region not known) 1",
        "Tübingen, Germany Ile-de-France, France 1", "Hovedstaden, Denmark Spain (region not known) 1",
        "Hovedstaden, Denmark Ile-de-France, France 1", "Ile-de-France, France Spain (region not known) 1",
    ]
    markers, links = _islands(markup)
    assert len(links) == 6
    # circles by actors: area proportional, the largest (2 actors) 15 px; Stuttgart's single actor sqrt(1/2) of it
    assert sorted((m["title"], m["radius"]) for m in markers) == [
        ("Hovedstaden", 15.0), ("Ile-de-France", 15.0), ("Stuttgart", 11.5), ("Tübingen", 15.0)]
    german = page(site, "/regions?country=de")
    assert "2 regions" in text(german) and "Hovedstaden DK01" not in text(german)
    assert len(_islands(german)[1]) == 3  # Tübingen's three links
    assert "No region has actors in Spain yet." in text(page(site, "/regions?country=ES"))


def test_regions_index_marks_regions_by_the_minimum(site, monkeypatch):
    from biofed.aggregator.datasette import pages

    monkeypatch.setattr(pages, "MIN_ACTORS_WITH_DATA", 2)
    rows = [text(r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", page(site, "/regions").split('id="regions-table"')[1],
                                        flags=re.S)[1:]]
    assert rows[0] == "Hovedstaden DK01 Denmark 2 2 2 sectors and stages 3"
    assert rows[2] == "Stuttgart DE11 Germany 1 1 1 too few 0"


@pytest.mark.parametrize("path", ["/find?where=DE&stage=production", "/find?where=DE14&technology=mRNA",
                                  "/find?where=DK&sector=pharma&stage=production", "/find?technology=crispr",
                                  "/find?where=FR10", "/find?stage=training"])
def test_search_without_words_same_answer_when_the_name_window_runs_out(site, monkeypatch, path):
    """A filtered list walks NAME_WINDOW names, then sorts the filters' own set: the same actors either way."""
    from biofed.aggregator.datasette import pages

    walked = re.findall(r'href="(/[^"]+/actor/[^"]+)"', page(site, path))
    assert walked
    monkeypatch.setattr(pages, "NAME_WINDOW", 1)
    assert re.findall(r'href="(/[^"]+/actor/[^"]+)"', page(site, path)) == walked


def test_search_says_when_it_ranked_a_window_of_matches(site, monkeypatch):
    from biofed.aggregator.datasette import pages

    assert "most relevant of the first" not in page(site, "/find?q=tübingen")
    monkeypatch.setattr(pages, "RANK_WINDOW", 1)
    markup = page(site, "/find?q=tübingen")
    assert "Many actors match: these are the most relevant of the first 1 found." in text(markup)
    assert len(re.findall(r'<li><a href="/bioregio-stern/actor/', markup)) == 1
