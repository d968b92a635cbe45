"""The catalogue's pages for people: the front door, search results, and actor, project, offer and region profiles.

Mounted into Datasette by the biofed_people plugin (register_routes); each
page is a few indexed queries against the served snapshot and one template
in templates/biofed/. A record's page lives at its id: /<node>/actor/<local>.
Datasette's own table, row, query and JSON pages stay as they are for developers.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import NotFound, Response

from biofed.aggregator.catalogue.finalise import MIN_ACTORS_WITH_DATA
from biofed.aggregator.datasette import charts, labels

DATABASE = "catalogue"
RESULTS = 20          # per kind on the search page
PROFILE_LIST = 50     # projects, offers, partners on a profile
PARTNERS_PER_PROJECT = 12
LINKS = 40            # cross-border links on a region page and its map
STRONGEST_LINKS = 25  # pairs of places on /regions
RANK_WINDOW = 500     # matches ranked by relevance on the search page (docs/benchmarks.md#catalogue)
NAME_WINDOW = 5_000   # names walked in order before a filtered list is sorted from its own indexes


def _db(datasette):
    return datasette.get_database(DATABASE)


async def _rows(datasette, sql: str, params=()) -> list[dict]:
    result = await _db(datasette).execute(sql, params)
    return [dict(row) for row in result.rows]


async def _one(datasette, sql: str, params=()) -> dict | None:
    rows = await _rows(datasette, sql, params)
    return rows[0] if rows else None


def _languages(request) -> list[str]:
    return labels.accepted_languages(request.headers.get("accept-language"))


def record_path(record_id: str | None) -> str | None:
    """A record's page: its id as a path."""
    return f"/{record_id}" if record_id else None


def _find_url(**params) -> str:
    return "/find?" + urlencode({k: v for k, v in params.items() if v})


async def _render(datasette, request, template: str, context: dict, status: int = 200) -> Response:
    html = await datasette.render_template(f"biofed/{template}", context, request=request, view_name="biofed")
    return Response.html(html, status=status)


# --- the front door -----------------------------------------------------------------------------------

# SQLite answers this by skipping through a (country, ...) index: one seek per country (0.1 ms at 1M).
COUNTRIES = "SELECT DISTINCT country FROM actors WHERE country IS NOT NULL"


async def _countries(datasette) -> list[str]:
    return [r["country"] for r in await _rows(datasette, COUNTRIES)]


async def _counts(datasette) -> dict:
    db = _db(datasette)
    tables = await db.table_counts(5)  # from the inspect data: the snapshot is immutable
    # Organisations, not records: one organisation that several nodes or sources describe counts once.
    countries = await _one(datasette, "SELECT count(*) AS n FROM (SELECT DISTINCT country FROM organisations"
                                      " WHERE country IS NOT NULL)")
    harvested = await _one(datasette, "SELECT max(last_success) AS at FROM nodes")
    return {"organisations": tables.get("organisations"), "actors": tables.get("actors"),
            "projects": tables.get("projects"), "offers": tables.get("offers"),
            "nodes": tables.get("nodes"), "countries": countries["n"], "harvested": harvested["at"]}


async def _where_choices(datasette, countries: list[str] | None = None) -> list[tuple[str, str]]:
    countries = await _countries(datasette) if countries is None else countries
    return sorted(((c, labels.country_name(c)) for c in countries), key=lambda c: c[1])


async def home(datasette, request):
    countries = await _countries(datasette)
    context = {
        "counts": await _counts(datasette),
        "where_choices": await _where_choices(datasette, countries),
        "stages": labels.codes("stage"),
        "sectors": labels.codes("sector"),
        "nodes": await _rows(datasette, "SELECT id, name, country FROM nodes ORDER BY name"),
        "q": "", "where": "", "stage": "", "sector": "",
    }
    return await _render(datasette, request, "home.html", context)


def _place_filter(where: str, alias: str) -> tuple[str, list]:
    """SQL for "in this country or region": a two-letter code is a country, longer a NUTS code (and its sub-regions)."""
    where = where.strip().upper()
    if not where:
        return "", []
    if len(where) == 2:
        return f" AND {alias}.country = ?", [where]
    return f" AND {alias}.region BETWEEN ? AND ? || '~'", [where, where]


def _clean(value: str | None, limit: int) -> str:
    """A form field as search text: control characters (a NUL ends an FTS5 query string) dropped, bounded."""
    return "".join(c for c in (value or "") if c.isprintable()).strip()[:limit]


async def find(datasette, request):
    args = request.args
    q = _clean(args.get("q"), 200)
    where = _clean(args.get("where"), 12)
    stage = _clean(args.get("stage"), 60)
    sector = _clean(args.get("sector"), 60)
    technology = _clean(args.get("technology"), 100)
    columns = "a.id, a.name, a.actor_type, a.country, a.region, a.region_name, a.city, a.node_id"
    place_sql, place_params = _place_filter(where, "a")
    facts = [(table, column, value) for table, column, value in (
        ("actor_value_chain", "stage", stage), ("actor_sectors", "sector", sector),
        ("actor_technologies", "technology", technology)) if value]
    # Per actor, one primary-key lookup each: for scans that stop early (a name or rank window).
    exists_sql = "".join(f" AND EXISTS (SELECT 1 FROM {t} j WHERE j.actor_id = a.id AND j.{c} = ?)" for t, c, _ in facts)
    facts_params = [v for _, _, v in facts]
    ranked_among = None
    if q:
        # Ranking is bm25 on every match (~1.3 us each: 107k actors match "cell therapy" at 1M, 134 ms).
        # Rank the first RANK_WINDOW matches that pass the filters, in catalogue order, and say so.
        actors = await _rows(
            datasette,
            f"SELECT {columns}, count(*) OVER () AS matched FROM ("
            f"SELECT a.rowid AS r, f.rank AS rank FROM actors_fts f JOIN actors a ON a.rowid = f.rowid"
            f" WHERE actors_fts MATCH escape_fts(?){place_sql}{exists_sql} LIMIT {RANK_WINDOW}"
            f") w JOIN actors a ON a.rowid = w.r ORDER BY w.rank LIMIT {RESULTS + 1}",
            [q, *place_params, *facts_params])
        if actors and actors[0]["matched"] >= RANK_WINDOW:
            ranked_among = RANK_WINDOW
    else:
        # In name order: walk the name index and stop at RESULTS + 1 matches (most questions match
        # a few percent of actors: ~600 index entries); when NAME_WINDOW names give too few, the filters
        # are selective and their own indexes give a small set to sort.
        actors = await _rows(
            datasette,
            f"SELECT {columns} FROM (SELECT * FROM actors ORDER BY name LIMIT {NAME_WINDOW}) a"
            f" WHERE 1{place_sql}{exists_sql} LIMIT {RESULTS + 1}", [*place_params, *facts_params])
        if len(actors) <= RESULTS and (place_sql or facts):
            in_sql, in_params = _facts_in(facts, where)
            actors = await _rows(datasette, f"SELECT {columns} FROM actors a WHERE 1{place_sql}{in_sql}"
                                            f" ORDER BY a.name LIMIT {RESULTS + 1}", [*place_params, *in_params])
    offer_place, offer_params = _place_filter(where, "o")
    offer_facts = ""
    if stage:
        offer_facts += " AND (',' || replace(o.value_chain_stages, ' ', '') || ',') LIKE ?"
        offer_params.append(f"%,{stage},%")
    if sector:
        offer_facts += " AND (',' || replace(o.sectors, ' ', '') || ',') LIKE ?"
        offer_params.append(f"%,{sector},%")
    if technology:
        offer_facts += " AND o.id IN (SELECT offer_id FROM offer_technologies WHERE technology = ?)"
        offer_params.append(technology)
    offer_columns = "o.id, o.title, o.offer_type, o.country, o.region, o.provider_id, p.name AS provider"
    if q:
        offers = await _rows(
            datasette,
            f"SELECT {offer_columns} FROM offers_fts f JOIN offers o ON o.rowid = f.rowid"
            f" LEFT JOIN actors p ON p.id = o.provider_id"
            f" WHERE offers_fts MATCH escape_fts(?){offer_place}{offer_facts} ORDER BY f.rank LIMIT {RESULTS + 1}",
            [q, *offer_params])
    else:
        offers = await _rows(
            datasette, f"SELECT {offer_columns} FROM offers o LEFT JOIN actors p ON p.id = o.provider_id"
                       f" WHERE 1{offer_place}{offer_facts} ORDER BY o.title LIMIT {RESULTS + 1}", offer_params)
    projects: list[dict] = []
    if q:
        project_place = ""
        project_params: list[Any] = [q]
        if where:
            column = "partner_country" if len(where) == 2 else "partner_region"
            project_place = f" AND p.id IN (SELECT project_id FROM participations WHERE {column} BETWEEN ? AND ? || '~')"
            project_params += [where.upper(), where.upper()]
        projects = await _rows(
            datasette,
            "SELECT p.id, p.title, p.title_stated, p.acronym, p.programme, p.start_date, p.end_date, p.countries"
            " FROM projects_fts f JOIN projects p ON p.rowid = f.rowid"
            f" WHERE projects_fts MATCH escape_fts(?){project_place} ORDER BY f.rank LIMIT {RESULTS + 1}",
            project_params)
    clusters = []
    if q:
        # A cluster (a node) is found by its name or id: "Genopole" lists the Genopole node's actors.
        clusters = await _rows(
            datasette,
            "SELECT n.id, n.name, n.country, (SELECT count(*) FROM actors a WHERE a.node_id = n.id) AS actors"
            " FROM nodes n WHERE n.name LIKE '%' || ? || '%' OR n.id = lower(?) ORDER BY n.name LIMIT 10", [q, q])
    filters = {"q": q, "where": where, "stage": stage, "sector": sector, "technology": technology}
    context = {
        **filters,
        "where_choices": await _where_choices(datasette),
        "stages": labels.codes("stage"),
        "sectors": labels.codes("sector"),
        "actors": actors[:RESULTS], "more_actors": len(actors) > RESULTS, "ranked_among": ranked_among,
        "offers": offers[:RESULTS], "more_offers": len(offers) > RESULTS,
        "projects": projects[:RESULTS], "more_projects": len(projects) > RESULTS,
        "clusters": clusters,
        "all_actors_url": _all_actors_url(q, where, stage, sector, technology),
        "where_label": (labels.country_name(where.upper()) if len(where) == 2 else labels.region_name(where.upper()))
        if where else "",
    }
    return await _render(datasette, request, "find.html", context)


def _facts_in(facts: list[tuple[str, str, str]], where: str) -> tuple[str, list]:
    """The filters as sets from their own indexes; a sector or stage set narrowed by place (its junction
    table repeats the actor's country and region, indexed with the value)."""
    where = where.strip().upper()
    sql, params = "", []
    for table, column, value in facts:
        if where and table == "actor_technologies":
            # no place in this junction table: check each actor of the place instead
            sql += f" AND EXISTS (SELECT 1 FROM {table} j WHERE j.actor_id = a.id AND j.{column} = ?)"
            params.append(value)
            continue
        sql += f" AND a.id IN (SELECT actor_id FROM {table} WHERE {column} = ?"
        params.append(value)
        if where:
            if len(where) == 2:
                sql += " AND country = ?"
                params.append(where)
            else:
                sql += " AND region BETWEEN ? AND ? || '~'"
                params += [where, where]
        sql += ")"
    return sql, params


def _all_actors_url(q, where, stage, sector, technology) -> str:
    """The same question as a canned query, for every match (up to its limit)."""
    if q:
        region = where if len(where) > 2 else ""
        country = where if len(where) == 2 else ""
        return "/catalogue/search?" + urlencode({"q": q, "country": country, "region": region})
    return "/catalogue/actors_by_stage_and_sector_in_region?" + urlencode(
        {"region": where, "stage": stage, "sector": sector})


# --- profiles -----------------------------------------------------------------------------------------

async def _signed(datasette, record_id: str) -> dict:
    row = await _one(datasette, "SELECT signed_json FROM records WHERE id = ?", [record_id])
    try:
        return json.loads(row["signed_json"]) if row and row["signed_json"] else {}
    except ValueError:
        return {}


async def _node(datasette, node_id: str | None) -> dict:
    return await _one(datasette, "SELECT id, name, country, base_url, licence, attribution, health, last_success"
                                 " FROM nodes WHERE id = ?", [node_id]) or {"id": node_id, "name": node_id}


async def _provenance(datasette, row: dict) -> dict:
    return {"row": row, "node": await _node(datasette, row.get("node_id"))}


async def record_page(datasette, request):
    vars_ = request.url_vars
    record_id = f"{vars_['node']}/{vars_['kind']}/{vars_['local']}"
    kind = vars_["kind"]
    if kind == "actor":
        return await actor_page(datasette, request, record_id)
    if kind == "project":
        return await project_page(datasette, request, record_id)
    return await offer_page(datasette, request, record_id)


def _marker(row: dict, title: str, url: str | None, detail: str = "") -> dict | None:
    if row.get("latitude") is None or row.get("longitude") is None:
        return None
    return {"lat": row["latitude"], "lon": row["longitude"], "title": title, "url": url, "detail": detail}


async def _profile(datasette, request, table: str, record_id: str) -> tuple[dict, dict, str | None, str | None]:
    """A record page's row, its signed record and its description in the visitor's language; 404 if absent."""
    row = await _one(datasette, f"SELECT * FROM {table} WHERE id = ?", [record_id])
    if row is None:
        raise NotFound(f"No {table[:-1]} {record_id} in this catalogue")
    signed = await _signed(datasette, record_id)
    description, description_lang = labels.pick_language(signed.get("description"), _languages(request))
    return row, signed, description, description_lang


async def actor_page(datasette, request, record_id: str):
    actor, signed, description, description_lang = await _profile(datasette, request, "actors", record_id)
    sectors = [r["sector"] for r in await _rows(datasette, "SELECT sector FROM actor_sectors WHERE actor_id = ?",
                                                 [record_id])]
    stages = [r["stage"] for r in await _rows(datasette, "SELECT stage FROM actor_value_chain WHERE actor_id = ?",
                                               [record_id])]
    technologies = [r["technology"] for r in await _rows(
        datasette, "SELECT technology FROM actor_technologies WHERE actor_id = ?", [record_id])]
    projects = await _rows(
        datasette,
        "SELECT p.id, p.title, p.title_stated, p.acronym, p.programme, p.start_date, p.end_date, x.role, p.partners"
        " FROM participations x JOIN projects p ON p.id = x.project_id WHERE x.actor_id = ?"
        f" ORDER BY p.start_date DESC, p.id LIMIT {PROFILE_LIST}", [record_id])
    for project in projects:
        project["others"] = await _rows(
            datasette,
            "SELECT x.partner_name, x.partner_country, x.actor_id, a.name FROM participations x"
            " LEFT JOIN actors a ON a.id = x.actor_id WHERE x.project_id = ? AND x.actor_id IS NOT ?"
            f" ORDER BY x.position LIMIT {PARTNERS_PER_PROJECT}", [project["id"], record_id])
    offers = await _rows(datasette, "SELECT id, title, offer_type FROM offers WHERE provider_id = ?"
                                    f" ORDER BY title LIMIT {PROFILE_LIST}", [record_id])
    identifiers = signed.get("identifiers") or {}
    links = []
    if labels.web_url(actor.get("website")):
        links.append(("Website", labels.web_url(actor["website"]), actor["website"]))
    if labels.web_url(actor.get("ror")):
        links.append(("ROR", actor["ror"], actor["ror"].rsplit("/", 1)[-1]))
    if actor.get("pic"):
        links.append(("PIC", "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/how-to-participate/"
                              "org-details/" + str(actor["pic"]), str(actor["pic"])))
    if actor.get("wikidata") or identifiers.get("wikidata"):
        wikidata = actor.get("wikidata") or identifiers.get("wikidata")
        links.append(("Wikidata", f"https://www.wikidata.org/wiki/{wikidata}", wikidata))
    other_names = [n for n in signed.get("names") or [] if isinstance(n, dict) and not n.get("preferred")]
    marker = _marker(actor, actor["name"], None, actor.get("city") or actor.get("region_name") or "")
    context = {
        "org": actor, "description": description, "description_lang": description_lang,
        "other_names": other_names, "sectors": sectors, "stages": stages, "technologies": technologies,
        "projects": projects, "offers": offers, "links": links, "email": actor.get("email"),
        "markers": [marker] if marker else [], "origin": await _provenance(datasette, actor),
        "record_id": record_id, "kind": "actor",
    }
    return await _render(datasette, request, "actor.html", context)


async def project_page(datasette, request, record_id: str):
    project, signed, description, description_lang = await _profile(datasette, request, "projects", record_id)
    partners = await _rows(
        datasette,
        "SELECT x.position, x.partner_name, x.partner_country, x.partner_region, x.role, x.contribution_eur,"
        " x.actor_id, x.resolved_by, a.name, a.city, a.region_name, a.latitude, a.longitude, a.node_id"
        " FROM participations x LEFT JOIN actors a ON a.id = x.actor_id WHERE x.project_id = ? ORDER BY x.position",
        [record_id])
    cents = {i: p.get("contributionCents") for i, p in enumerate(signed.get("partners") or [], start=1)
             if isinstance(p, dict)}
    for partner in partners:
        partner["contribution"] = labels.euros_from_cents(cents.get(partner["position"])) \
            or labels.euros(partner["contribution_eur"])
    markers = [m for m in (_marker(p, p["name"] or p["partner_name"] or "", record_path(p["actor_id"]),
                                   p.get("city") or p.get("region_name") or labels.country_name(p["partner_country"]))
                           for p in partners) if m]
    context = {
        "project": project, "description": description, "description_lang": description_lang,
        "budget": labels.euros_from_cents(signed.get("totalBudgetCents")) or labels.euros(project["total_budget_eur"]),
        "contribution": labels.euros_from_cents(signed.get("euContributionCents"))
        or labels.euros(project["eu_contribution_eur"]),
        "partners": partners, "markers": markers, "origin": await _provenance(datasette, project),
        "record_id": record_id, "kind": "project",
    }
    return await _render(datasette, request, "project.html", context)


async def offer_page(datasette, request, record_id: str):
    offer, signed, description, description_lang = await _profile(datasette, request, "offers", record_id)
    provider = await _one(datasette, "SELECT id, name, actor_type, city, country, region, region_name, latitude,"
                                     " longitude FROM actors WHERE id = ?", [offer["provider_id"]])
    technologies = [r["technology"] for r in await _rows(
        datasette, "SELECT technology FROM offer_technologies WHERE offer_id = ?", [record_id])]
    marker = _marker(provider, provider["name"], record_path(provider["id"])) if provider else None
    context = {
        "offer": offer, "description": description, "description_lang": description_lang, "provider": provider,
        "technologies": technologies, "sectors": _split(offer.get("sectors")),
        "stages": _split(offer.get("value_chain_stages")),
        "markers": [marker] if marker else [], "origin": await _provenance(datasette, offer),
        "record_id": record_id, "kind": "offer",
    }
    return await _render(datasette, request, "offer.html", context)


def _split(joined: str | None) -> list[str]:
    return [v.strip() for v in (joined or "").split(",") if v.strip()]


# --- regions ------------------------------------------------------------------------------------------

async def _europe(datasette, dimension: str) -> tuple[dict[str, int], int]:
    """Europe's organisations per value of a dimension, and those with any (from the maintained counts)."""
    rows = await _rows(datasette, "SELECT value, sum(organisations) AS n FROM organisation_counts WHERE dimension = ?"
                                  " GROUP BY value", [dimension])
    counts = {r["value"]: r["n"] for r in rows}
    return {k: v for k, v in counts.items() if k}, counts.get("", 0)


async def region_page(datasette, request):
    code = request.url_vars["code"].upper()
    region = await _one(datasette, "SELECT code, name, level, country, latitude, longitude FROM regions WHERE code = ?",
                        [code])
    if region is None:
        raise NotFound(f"No NUTS 2021 region {code}")
    # The survey counts organisations (an organisation several records describe counts once).
    counted = await _one(datasette, "SELECT organisations AS actors FROM organisation_counts WHERE region = ?"
                                    " AND dimension = ''", [code])
    in_region = counted["actors"] if counted else 0
    dimensions = []
    for dimension, kind, noun in (("sector", "sector", "sector"), ("stage", "stage", "value-chain stage")):
        profile = {r["value"]: r for r in await _rows(
            datasette, "SELECT * FROM region_profiles WHERE region = ? AND dimension = ?", [code, dimension])}
        europe, europe_known = await _europe(datasette, dimension)
        known_row = await _one(datasette, "SELECT organisations AS actors FROM organisation_counts WHERE region = ?"
                                          " AND dimension = ?"
                                          " AND value = ''", [code, dimension])
        known = known_row["actors"] if known_row else 0
        too_few = known < MIN_ACTORS_WITH_DATA
        rows = []
        for value, europe_actors in sorted(europe.items(), key=lambda kv: -kv[1]):
            mine = profile.get(value)
            actors = mine["actors"] if mine else 0
            region_share = actors / known if known else 0.0
            europe_share = europe_actors / europe_known if europe_known else 0.0
            rows.append({
                "value": value, "label": labels.short_label(kind, value), "actors": actors,
                "europe_actors": europe_actors, "region_share": region_share, "europe_share": europe_share,
                # A value no actor of the region has is an index of 0, once the region has enough data.
                "specialisation": None if too_few else (mine["specialisation"] if mine else 0.0),
            })
        dimensions.append({
            "name": dimension, "noun": noun, "known": known, "europe_known": europe_known, "too_few": too_few,
            "rows": rows, "kind": kind,
            "chart": charts.share_bars(
                f"{region['name']}: share of actors with {noun} data in each, beside Europe", rows,
                region_label=region["name"], chart_id=f"chart-{dimension}") if known and rows else None,
        })
    actors = await _rows(
        datasette,
        "SELECT id, name, actor_type, city, latitude, longitude FROM actors"
        f" WHERE region = ? ORDER BY name LIMIT {PROFILE_LIST}", [code])
    sub_regions = await _rows(datasette, "SELECT code, name FROM regions WHERE code LIKE ? || '_%' ORDER BY code",
                              [code])
    links = await _links(datasette, code)
    linked_places = (await _one(datasette, "SELECT count(*) AS n FROM region_links WHERE region = ?", [code]))["n"]
    offers = await _rows(datasette, "SELECT o.id, o.title, o.offer_type, a.name AS provider, o.provider_id"
                                    " FROM offers o LEFT JOIN actors a ON a.id = o.provider_id"
                                    f" WHERE o.country = ? AND o.region = ? ORDER BY o.title LIMIT {PROFILE_LIST}",
                         [region["country"], code])
    markers = [m for m in (_marker(a, a["name"], record_path(a["id"]), labels.label("actor_type", a["actor_type"]))
                           for a in actors) if m]
    context = {
        "region": region, "in_region": in_region, "dimensions": dimensions, "actors": actors,
        "sub_regions": sub_regions, "links": links, "linked_places": linked_places,
        "link_map": await _link_map(datasette, region, links), "offers": offers, "markers": markers,
        "minimum": MIN_ACTORS_WITH_DATA, "country": labels.country_name(region["country"]),
    }
    return await _render(datasette, request, "region.html", context)


async def _links(datasette, code: str) -> list[dict]:
    """The region's cross-border links (precomputed at finalise: region_links), strongest first."""
    return await _rows(
        datasette,
        "SELECT l.partner_place AS place, l.partner_region AS region, l.partner_country AS country, l.projects,"
        " r.name AS region_name FROM region_links l LEFT JOIN regions r ON r.code = l.partner_region"
        f" WHERE l.region = ? ORDER BY l.projects DESC, l.partner_place LIMIT {LINKS}", [code])


async def _centres(datasette, codes: set[str]) -> dict[str, tuple[float, float]]:
    """Map positions of NUTS codes and of countries (a country: the mean of its NUTS 1 centres)."""
    centres = {}
    regions = [c for c in codes if len(c) > 2]
    if regions:
        for row in await _rows(datasette, "SELECT code, latitude, longitude FROM regions WHERE code IN"
                                          f" ({', '.join('?' * len(regions))}) AND latitude IS NOT NULL", regions):
            centres[row["code"]] = (row["latitude"], row["longitude"])
    countries = [c for c in codes if len(c) == 2]
    if countries:
        for row in await _rows(datasette, "SELECT country, avg(latitude) AS latitude, avg(longitude) AS longitude"
                                          f" FROM regions WHERE level = 1 AND country IN ({', '.join('?' * len(countries))})"
                                          " AND latitude IS NOT NULL GROUP BY country", countries):
            centres[row["country"]] = (row["latitude"], row["longitude"])
    return centres


def _place_name(link: dict) -> str:
    if link.get("region"):
        return f"{link.get('region_name') or labels.region_name(link['region'])}, {labels.country_name(link['country'])}"
    return labels.country_name(link["country"])


async def _link_map(datasette, region: dict, links: list[dict]) -> dict:
    """Lines from a region to the places it shares projects with, their weight by the number of projects."""
    centres = await _centres(datasette, {link["place"] for link in links})
    peak = max([link["projects"] for link in links] + [1])
    lines = []
    for link in links:
        if link["place"] not in centres or region.get("latitude") is None:
            continue
        lat, lon = centres[link["place"]]
        lines.append({
            "from": [region["latitude"], region["longitude"]], "to": [lat, lon],
            "weight": round(1 + 7 * link["projects"] / peak, 1), "radius": round(4 + 10 * link["projects"] / peak, 1),
            "title": _place_name(link), "url": f"/region/{link['region']}" if link.get("region") else None,
            "detail": f"{link['projects']} shared project{'s' if link['projects'] != 1 else ''}",
        })
    home_marker = _marker(region, region["name"], None, "this region") if lines else None
    return {"markers": [home_marker] if home_marker else [], "links": lines,
            "unplaced": len(links) - len(lines)}


async def regions_index(datasette, request):
    """Every region with actors: counts, whether it has enough data for a specialisation index, its links abroad."""
    country = _clean(request.args.get("country"), 2).upper()
    country_sql, params = (" AND coalesce(r.country, substr(t.region, 1, 2)) = ?", [country]) if country else ("", [])
    # Organisations, as the region pages and the survey count them (one that several records describe counts once).
    regions = await _rows(
        datasette,
        "SELECT t.region AS code, r.name, r.level, coalesce(r.country, substr(t.region, 1, 2)) AS country,"
        " r.latitude, r.longitude, t.organisations AS actors,"
        " coalesce(s.organisations, 0) AS with_sectors, coalesce(g.organisations, 0) AS with_stages,"
        " (SELECT count(*) FROM region_links l WHERE l.region = t.region) AS partner_places"
        " FROM organisation_counts t LEFT JOIN regions r ON r.code = t.region"
        " LEFT JOIN organisation_counts s ON s.region = t.region AND s.dimension = 'sector' AND s.value = ''"
        " LEFT JOIN organisation_counts g ON g.region = t.region AND g.dimension = 'stage' AND g.value = ''"
        f" WHERE t.dimension = '' AND t.value = '' AND t.region != ''{country_sql}", params)
    for r in regions:
        r["country_name"] = labels.country_name(r["country"])
        r["sector_index"] = r["with_sectors"] >= MIN_ACTORS_WITH_DATA
        r["stage_index"] = r["with_stages"] >= MIN_ACTORS_WITH_DATA
    regions.sort(key=lambda r: (r["country_name"], r["name"] or r["code"]))
    peak = max([r["actors"] for r in regions] + [1])
    markers = [dict(m, radius=round(3 + 12 * (r["actors"] / peak) ** 0.5, 1)) for m, r in (
        (_marker(r, r["name"] or r["code"], f"/region/{r['code']}", f"{r['actors']:,} organisations"), r) for r in regions) if m]
    strongest = await _rows(
        datasette,
        "SELECT l.region, a.name AS region_name, a.country, a.latitude, a.longitude, l.partner_place AS place,"
        " l.partner_region, l.partner_country, b.name AS partner_name, l.projects FROM region_links l"
        " LEFT JOIN regions a ON a.code = l.region LEFT JOIN regions b ON b.code = l.partner_region"
        # each pair once: a region-to-region link is stored both ways
        " WHERE (l.partner_region IS NULL OR l.region < l.partner_region)"
        + (" AND (a.country = ? OR l.partner_country = ?)" if country else "")
        + f" ORDER BY l.projects DESC, l.region, l.partner_place LIMIT {STRONGEST_LINKS}", [country, country] if country else [])
    centres = await _centres(datasette, {link["place"] for link in strongest})
    peak_link = max([link["projects"] for link in strongest] + [1])
    lines = [{"from": [link["latitude"], link["longitude"]], "to": list(centres[link["place"]]),
              "weight": round(1 + 7 * link["projects"] / peak_link, 1),
              "title": f"{link['region_name'] or link['region']} – {link['partner_name'] or labels.country_name(link['partner_country'])}",
              "detail": f"{link['projects']} shared project{'s' if link['projects'] != 1 else ''}", "url": None}
             for link in strongest if link["latitude"] is not None and link["place"] in centres]
    countries = await _rows(datasette, "SELECT DISTINCT coalesce(r.country, substr(t.region, 1, 2)) AS country"
                                       " FROM organisation_counts t LEFT JOIN regions r ON r.code = t.region"
                                       " WHERE t.dimension = '' AND t.value = '' AND t.region != ''")
    context = {
        "regions": regions, "country": country, "country_label": labels.country_name(country) if country else "",
        "countries": sorted(((c["country"], labels.country_name(c["country"])) for c in countries),
                            key=lambda c: c[1]),
        "markers": markers, "lines": lines, "strongest": strongest, "minimum": MIN_ACTORS_WITH_DATA,
        "place_name": lambda link: (f"{link['partner_name'] or link['partner_region']}, "
                                    f"{labels.country_name(link['partner_country'])}") if link["partner_region"]
        else labels.country_name(link["partner_country"]),
    }
    return await _render(datasette, request, "regions.html", context)


ROUTES = [
    (r"^/regions$", regions_index),
    (r"^/$", home),
    (r"^/find$", find),
    (r"^/region/(?P<code>[A-Za-z]{2}[A-Za-z0-9]{0,3})$", region_page),
    (r"^/(?P<node>[a-z0-9][a-z0-9-]{1,62})/(?P<kind>actor|project|offer)/(?P<local>[a-z0-9][a-z0-9._-]{0,127})$",
     record_page),
]
