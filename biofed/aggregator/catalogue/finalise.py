"""Finalise, once after a harvest: partner resolution across nodes, region profiles and links, FTS merge, ANALYZE."""

from __future__ import annotations

import sqlite3

from biofed.aggregator.catalogue import organisations
from biofed.aggregator.catalogue.tables import FTS_COLUMNS, _statements


# Partner resolution. {scope} restricts every statement to the projects an
# incremental finalise must look at (empty: all). Each statement decides a
# participation from that row and the actors table only, so running them on
# every project that can have changed gives the same result as running them on all.
RESOLVE = """
-- forget resolutions whose actor has gone
UPDATE participations SET actor_id = NULL, resolved_by = NULL, partner_region = NULL
 WHERE actor_id IS NOT NULL AND actor_id NOT IN (SELECT id FROM actors){scope};
-- 1. the partner names an actor record (on any node)
UPDATE participations SET actor_id = actor_ref, resolved_by = 'id'
 WHERE actor_ref IS NOT NULL AND actor_ref IN (SELECT id FROM actors)
   AND actor_id IS NOT actor_ref{scope};
-- 2. else the same ROR id; 3. else the same PIC. Fresh records win, then the smallest id.
UPDATE participations SET resolved_by = 'ror', actor_id = (
    SELECT a.id FROM actors a WHERE a.ror = participations.ror ORDER BY a.stale, a.id LIMIT 1)
 WHERE (resolved_by IS NULL OR resolved_by = 'ror') AND ror IS NOT NULL
   AND EXISTS (SELECT 1 FROM actors a WHERE a.ror = participations.ror){scope};
UPDATE participations SET resolved_by = 'pic', actor_id = (
    SELECT a.id FROM actors a WHERE a.pic = participations.pic ORDER BY a.stale, a.id LIMIT 1)
 WHERE (resolved_by IS NULL OR resolved_by = 'pic') AND pic IS NOT NULL
   AND EXISTS (SELECT 1 FROM actors a WHERE a.pic = participations.pic){scope};
-- the partner's region: its actor's, else the one the project record states (a partner on no node)
UPDATE participations SET partner_region = coalesce(
    (SELECT a.region FROM actors a WHERE a.id = participations.actor_id), stated_region)
 WHERE (actor_id IS NOT NULL OR stated_region IS NOT NULL){scope};
UPDATE projects SET regions = (
    SELECT count(DISTINCT partner_region) FROM participations WHERE project_id = projects.id){project_scope};
"""

# The projects whose participations can resolve differently after the touched records changed:
# the touched projects themselves and those whose partners name, resolved to, or share a ROR/PIC
# with a touched actor (a deleted actor's projects were added by delete_records).
SCOPE = """
CREATE TEMP TABLE IF NOT EXISTS finalise_scope (project_id TEXT PRIMARY KEY) WITHOUT ROWID;
DELETE FROM temp.finalise_scope;
INSERT OR IGNORE INTO temp.finalise_scope SELECT id FROM projects WHERE id IN (SELECT id FROM finalise_touched);
INSERT OR IGNORE INTO temp.finalise_scope SELECT project_id FROM participations
 WHERE actor_id IN (SELECT id FROM finalise_touched);
INSERT OR IGNORE INTO temp.finalise_scope SELECT project_id FROM participations
 WHERE actor_ref IS NOT NULL AND actor_ref IN (SELECT id FROM finalise_touched);
INSERT OR IGNORE INTO temp.finalise_scope SELECT project_id FROM participations
 WHERE ror IS NOT NULL AND ror IN (SELECT ror FROM actors WHERE id IN (SELECT id FROM finalise_touched) AND ror IS NOT NULL);
INSERT OR IGNORE INTO temp.finalise_scope SELECT project_id FROM participations
 WHERE pic IS NOT NULL AND pic IN (SELECT pic FROM actors WHERE id IN (SELECT id FROM finalise_touched) AND pic IS NOT NULL);
"""

REBUILD_COUNTS = """
DELETE FROM profile_counts;
INSERT INTO profile_counts (region, dimension, value, actors)
 SELECT coalesce(region, ''), 'sector', sector, count(*) FROM actor_sectors GROUP BY coalesce(region, ''), sector;
INSERT INTO profile_counts (region, dimension, value, actors)
 SELECT coalesce(region, ''), 'stage', stage, count(*) FROM actor_value_chain GROUP BY coalesce(region, ''), stage;
INSERT INTO profile_counts (region, dimension, value, actors)
 SELECT coalesce(region, ''), '', '', count(*) FROM actors GROUP BY coalesce(region, '');
INSERT INTO profile_counts (region, dimension, value, actors)
 SELECT coalesce(region, ''), 'sector', '', count(DISTINCT actor_id) FROM actor_sectors GROUP BY coalesce(region, '');
INSERT INTO profile_counts (region, dimension, value, actors)
 SELECT coalesce(region, ''), 'stage', '', count(DISTINCT actor_id) FROM actor_value_chain GROUP BY coalesce(region, '');
"""

# A region needs at least this many organisations with data in a dimension (sectors, or stages)
# before its specialisation index in that dimension is published; below it the row says too_few = 1
# and the index is empty (two organisations are not a regional profile).
# docs/catalogue.md#the-territorial-survey
MIN_ACTORS_WITH_DATA = 5

# The territorial survey, computed once per harvest rather than per request. It counts
# organisations, not records: a company that two nodes publish counts once, in its region
# (organisations.py groups the records). Per sector and per stage in each region, and the
# specialisation index, a location quotient over the organisations whose dimension is known --
# (region's organisations in it / region's organisations with data in that dimension) / (Europe's
# organisations in it / Europe's organisations with data). Organisations without sectors count in
# neither share: most records carry none, and counting them would divide Europe's share by every
# organisation. From organisation_counts (regions x values rows, the conventions of profile_counts),
# not from the organisation tables; records_in_region (from profile_counts) says how many records
# the region's organisations come from. The columns keep their names (`actors` = organisations).
# "Europe" is every organisation in the catalogue.
REGION_PROFILES = """
DELETE FROM profile_counts WHERE actors = 0;
DELETE FROM region_profiles;
INSERT INTO region_profiles (region, region_name, dimension, value, actors, actors_in_region, actors_with_data,
                             europe_actors, europe_with_data, specialisation, too_few, records_in_region)
WITH per_region AS (
    SELECT region, dimension, value, organisations AS n FROM organisation_counts
     WHERE region != '' AND dimension != '' AND value != ''
),
region_totals AS (SELECT region, organisations AS total FROM organisation_counts WHERE region != '' AND dimension = ''),
region_known AS (
    SELECT region, dimension, organisations AS known FROM organisation_counts
     WHERE region != '' AND dimension != '' AND value = ''
),
region_records AS (SELECT region, actors AS records FROM profile_counts WHERE region != '' AND dimension = ''),
europe AS (SELECT dimension, value, sum(organisations) AS n FROM organisation_counts WHERE dimension != ''
            GROUP BY dimension, value)
SELECT p.region, r.name, p.dimension, p.value, p.n, t.total, k.known, e.n, ek.n,
       CASE WHEN k.known >= {minimum}
            THEN round((1.0 * p.n / k.known) / (1.0 * e.n / ek.n), 2) END,
       k.known < {minimum}, rr.records
FROM per_region p
JOIN region_totals t ON t.region = p.region
JOIN region_known k ON k.region = p.region AND k.dimension = p.dimension
JOIN europe e ON e.dimension = p.dimension AND e.value = p.value
JOIN europe ek ON ek.dimension = p.dimension AND ek.value = ''
LEFT JOIN region_records rr ON rr.region = p.region
LEFT JOIN regions r ON r.code = p.region;
"""


# Cross-border links between regions, computed once per harvest rather than per request (a region
# page, the map of links, /regions): for each region a partner is placed in, every place in another
# country -- the other partner's region, else its country -- with the number of projects they share.
# A full rebuild from participations (a few seconds at 1M actors, docs/benchmarks.md#catalogue).
REGION_LINKS = """
DELETE FROM region_links;
INSERT INTO region_links (region, partner_place, partner_region, partner_country, projects)
SELECT x.partner_region, coalesce(o.partner_region, o.partner_country), o.partner_region, max(o.partner_country),
       count(DISTINCT x.project_id)
FROM participations x JOIN participations o ON o.project_id = x.project_id AND o.position != x.position
WHERE x.partner_region IS NOT NULL AND o.partner_country IS NOT NULL AND o.partner_country IS NOT x.partner_country
GROUP BY x.partner_region, coalesce(o.partner_region, o.partner_country);
"""


def finalise(conn: sqlite3.Connection, *, min_actors: int = MIN_ACTORS_WITH_DATA) -> None:
    """After a harvest: resolve partners across nodes, group organisations, count regions, merge FTS, ANALYZE.

    Incremental when the last finalise completed: partner resolution only for the
    projects the changed records can affect, region profiles from the maintained
    counts. A new or older catalogue (no 'incremental' mark) is recomputed in full.
    """
    row = conn.execute("SELECT value FROM catalogue_state WHERE name = 'incremental'").fetchone()
    incremental = bool(row and row[0])
    touched = conn.execute("SELECT count(*) FROM finalise_touched").fetchone()[0]
    # Records changed since the planner statistics were gathered.
    row = conn.execute("SELECT value FROM catalogue_state WHERE name = 'unanalysed'").fetchone()
    unanalysed = (row[0] if row and row[0] else 0) + touched
    # ANALYZE (bounded by analysis_limit in the harvest) when the statistics are missing or more
    # than a tenth of the actors changed since they were gathered; a 1 % run keeps them. First, so that
    # finalise's own statements are planned on the tables' present size: statistics of a small
    # catalogue made `UPDATE projects SET regions = (... WHERE project_id = ...)` scan every
    # participation once per project (100k projects: hours instead of a second).
    try:
        stat = conn.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = 'actors' LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # no sqlite_stat1 yet
        stat = None
    analysed_rows = int(stat[0].split()[0]) if stat and stat[0] else 0
    analysed = not incremental or stat is None or unanalysed * 10 > analysed_rows
    if analysed:
        conn.execute("ANALYZE")
        unanalysed = 0
    if incremental:
        for statement in _statements(SCOPE):
            conn.execute(statement)
        scope = " AND project_id IN (SELECT project_id FROM temp.finalise_scope)"
        project_scope = " WHERE id IN (SELECT project_id FROM temp.finalise_scope)"
    else:
        for statement in _statements(REBUILD_COUNTS):
            conn.execute(statement)
        scope = project_scope = ""
    for statement in _statements(RESOLVE.format(scope=scope, project_scope=project_scope)):
        conn.execute(statement)
    if incremental:
        conn.execute("DROP TABLE temp.finalise_scope")
    organisations.finalise(conn, incremental=incremental)  # the survey counts its organisations
    for statement in _statements(REGION_PROFILES.format(minimum=int(min_actors)) + REGION_LINKS):
        conn.execute(statement)
    if analysed:
        # What finalise itself rewrote: the partners it resolved (actor_id was NULL for every partner
        # of a bulk load), the organisations it grouped and the derived tables.
        rewritten = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE 'organisation%'"
            " OR name IN ('participations', 'region_profiles', 'region_links'))")]
        for table in rewritten:
            conn.execute(f"ANALYZE [{table}]")
    conn.execute("DELETE FROM finalise_touched")
    for table in FTS_COLUMNS:
        # A bounded incremental merge, not 'optimize' (which rewrites the whole index every harvest);
        # the budget (leaf pages) follows the number of changed records, so a small run stays small.
        pages = 500 if not incremental else min(500, max(16, touched // 4))
        conn.execute(f"INSERT INTO [{table}_fts] ([{table}_fts], rank) VALUES ('merge', ?)", (pages,))
    conn.execute("INSERT INTO catalogue_state (name, value) VALUES ('unanalysed', ?)"
                 " ON CONFLICT (name) DO UPDATE SET value = excluded.value", (unanalysed,))
    conn.execute("INSERT INTO catalogue_state (name, value) VALUES ('incremental', 1)"
                 " ON CONFLICT (name) DO UPDATE SET value = 1")
