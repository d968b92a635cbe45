"""Places: NUTS 2021 regions from city names and coordinates (the GeoNames gazetteer), on real files."""

import json

import pytest

from biofed.data import data_path
from biofed.node.importers import read_rows
from biofed.node.importers.regions import (
    place_for_city,
    region_for_city,
    region_for_point,
)
from biofed.schema import nuts_regions

# City (as staff type it), country, NUTS 2021 region; each checked against the names in nuts2021.csv.
# All have >= 15,000 inhabitants.
KNOWN = [
    ("Strasbourg", "FR", "FRF1"),   # Alsace
    ("Colmar", "FR", "FRF1"),       # Alsace
    ("Lyon", "FR", "FRK2"),         # Rhône-Alpes
    ("Paris", "FR", "FR10"),        # Ile-de-France
    ("Kraków", "PL", "PL21"),       # Małopolskie
    ("Krakau", "PL", "PL21"),
    ("Łódź", "PL", "PL71"),         # Łódzkie
    ("Lodz", "PL", "PL71"),
    ("Wrocław", "PL", "PL51"),      # Dolnośląskie
    ("Warszawa", "PL", "PL91"),     # Warszawski stołeczny
    ("Tübingen", "DE", "DE14"),     # Tübingen
    ("TUEBINGEN", "DE", "DE14"),
    ("Freiburg im Breisgau", "DE", "DE13"),  # Freiburg
    ("Mannheim", "DE", "DE12"),     # Karlsruhe
    ("München", "DE", "DE21"),      # Oberbayern
    ("Gent", "BE", "BE23"),         # Prov. Oost-Vlaanderen
    ("Ghent", "BE", "BE23"),
    ("Leuven", "BE", "BE24"),       # Prov. Vlaams-Brabant
    ("Milano", "IT", "ITC4"),       # Lombardia
    ("Trento", "IT", "ITH2"),       # Provincia Autonoma di Trento
    ("Lausanne", "CH", "CH01"),     # Région lémanique
    ("Zürich", "CH", "CH04"),       # Zürich
    ("Aarhus", "DK", "DK04"),       # Midtjylland
    ("København", "DK", "DK01"),    # Hovedstaden
    ("Barcelona", "ES", "ES51"),    # Cataluña
    ("Wien", "AT", "AT13"),         # Wien
]


def test_known_answers_are_nuts_2021_codes():
    codes = nuts_regions()
    assert all(region in codes and codes[region]["level"] == 2 for _, _, region in KNOWN)


@pytest.mark.parametrize("city,country,region", KNOWN)
def test_city_gives_its_level_2_region_and_coordinates(city, country, region):
    place, why = place_for_city(city, country)
    assert why is None and place.region == region
    assert region_for_city(city, country) == region
    # the place's own coordinates lead back to the same region
    assert region_for_point(place.lat, place.lon, country) == region


def test_points_near_a_border_take_their_own_side():
    # Mannheim and Ludwigshafen face each other across the Rhine (4 km): DE12 / DEB3
    assert region_for_point("49.4891", "8.4669", "DE") == "DE12"
    # Rheinland-Pfalz has no second administrative level in the source: level 1 (DEB), not DEB3
    assert region_for_point("49.4811", "8.4353", "DE") == "DEB"
    # Strasbourg and Kehl: the record's country decides the side
    assert region_for_point("48.5800", "7.7800", "FR") == "FRF1"
    assert region_for_point("48.5800", "7.7800", "DE") == "DE13"
    # far from every listed place: no region rather than a guess
    assert region_for_point("45.0", "-12.0", "FR") is None


def test_level_1_where_the_source_has_no_level_2():
    assert region_for_city("Ludwigshafen am Rhein", "DE") == "DEB"  # Rheinland-Pfalz
    assert region_for_city("Erfurt", "DE") == "DEG0"  # Thüringen is one NUTS 2 region


def test_unknown_and_ambiguous_cities_say_why():
    assert place_for_city("Nowhereville", "DE") == (None, "not in the gazetteer")
    assert region_for_city("Nowhereville", "DE") is None
    assert region_for_city("Nowhereville", "DK") == "DK0"  # one NUTS 1 region: the country decides


def _csv(tmp_path, rows):
    path = tmp_path / "members.csv"
    lines = ["name,actor_type,country,city,lat,lon"] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_spreadsheet_rows_get_region_and_coordinates_or_a_warning(tmp_path):
    rows = [(f"Org {i}", "sme", country, city, "", "") for i, (city, country, _) in enumerate(KNOWN)]
    rows.append(("Org x", "sme", "FR", "Nowhereville", "", ""))
    rows.append(("Org y", "sme", "FR", "Strasbourg", "48.0808", "7.3558"))  # coordinates win: Colmar's
    result = list(read_rows(_csv(tmp_path, rows), node_id="n"))
    assert all(row.ok for row in result), [row.errors for row in result]
    found = [row for row in result[:len(KNOWN)] if row.content.get("region") == KNOWN[result.index(row)][2]]
    assert len(found) == len(KNOWN)  # target >= 90 % for cities of >= 15,000 inhabitants: all here
    strasbourg = result[0].content
    assert strasbourg["geo"] == {"lat": "48.583900", "lon": "7.745500"} and not result[0].warnings
    unknown = result[len(KNOWN)]
    assert "region" not in unknown.content and "geo" not in unknown.content
    assert [(w.field, w.message) for w in unknown.warnings] == [
        ("region", "no NUTS region found for the city 'Nowhereville' (not in the gazetteer); give a region column")]
    given = result[-1].content
    assert given["region"] == "FRF1" and given["geo"] == {"lat": "48.080800", "lon": "7.355800"}


def test_shipped_ror_sample_coverage_and_agreement_with_selection():
    rows = list(read_rows(data_path("ror-regions.jsonl"), format="ror", node_id="n"))
    with_region = [row for row in rows if row.content.get("region")]
    assert len(with_region) / len(rows) >= 0.9
    assert all(row.warnings for row in rows if not row.content.get("region"))
    # the sample was selected by ISO 3166-2 subdivision: the coordinates must agree with it
    selected = {"DE": "DE1", "FR": "FR1", "IT": "ITC4", "BE": "BE2", "DK": "DK0", "CH": "CH0"}
    agree = [row for row in with_region if row.content["region"].startswith(selected[row.content["country"]])]
    assert len(agree) / len(with_region) >= 0.99


def test_ror_record_without_a_findable_place_is_a_warning(tmp_path):
    record = {"id": "https://ror.org/000000000",
              "names": [{"value": "Sea Lab", "types": ["ror_display"], "lang": None}],
              "types": ["facility"], "status": "active",
              "locations": [{"geonames_id": 1, "geonames_details": {
                  "country_code": "FR", "name": "Atlantis", "lat": 45.0, "lng": -12.0}}]}
    path = tmp_path / "ror.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    [row] = read_rows(path, format="ror", node_id="n")
    assert row.ok and "region" not in row.content
    assert [str(w) for w in row.warnings] == [
        "region: no NUTS region found for 'Atlantis'; give a region column or coordinates"]


def test_cordis_organisations_without_region_are_warnings_naming_their_city():
    from biofed.node.importers.regions import nuts_countries

    rows = [row for row in read_rows(data_path("cordis"), format="cordis", node_id="n", kind="actor")]
    assert rows and all(row.ok for row in rows)
    in_nuts = [row for row in rows if row.content["country"] in nuts_countries()]
    for row in in_nuts:
        if "region" in row.content:
            assert not row.warnings
            continue
        city = row.content.get("address", {}).get("locality")
        expected = f"city {city!r}" if city else "an organisation without city"
        assert [w.field for w in row.warnings] == ["region"] and expected in row.warnings[0].message
    assert not any(row.warnings for row in rows if row not in in_nuts)  # Israel, Senegal: no NUTS, no warning
    with_city = [row for row in in_nuts if row.content.get("address", {}).get("locality")]
    assert len([row for row in with_city if "region" in row.content]) / len(with_city) >= 0.9
