// BioFed's small maps: markers from a JSON island, tiles from the configured server.
// Popups are built with textContent (names come from signed records, never run as HTML);
// when the tile server cannot be reached the page says so and the markers stay.
// Leaflet is datasette-leaflet's ES module build (its URL set by that plugin on every page).
const L = await import(window.datasette.leaflet.JAVASCRIPT_URL);

{
  function popupFor(m) {
    var popup = document.createElement("div");
    var title = document.createElement(m.url ? "a" : "strong");
    title.textContent = m.title;
    if (m.url) { title.href = m.url; }
    popup.appendChild(title);
    if (m.detail) {
      var detail = document.createElement("div");
      detail.textContent = m.detail;
      popup.appendChild(detail);
    }
    return popup;
  }

  function build(container) {
    var figure = container.closest("figure");
    var markers = JSON.parse(figure.querySelector(".biofed-map-markers").textContent);
    var notice = figure.querySelector(".map-notice");
    var map = L.map(container, { scrollWheelZoom: false });
    var tiles = L.tileLayer(container.dataset.tiles, { maxZoom: 18, attribution: container.dataset.attribution });
    var failed = false;
    tiles.on("tileerror", function () {
      if (!failed) { failed = true; notice.hidden = false; }
    });
    tiles.addTo(map);
    var island = figure.querySelector(".biofed-map-links");
    var links = island ? JSON.parse(island.textContent) : [];
    var points = [];
    // Lines first, so that markers and circles are drawn (and clicked) above them.
    links.forEach(function (l) {
      L.polyline([l.from, l.to], { color: "#1b6a8c", weight: l.weight || 2, opacity: 0.6 })
        .bindPopup(popupFor(l)).addTo(map);
      if (l.radius) {
        L.circleMarker(l.to, { radius: l.radius, color: "#1b6a8c", weight: 1, fillColor: "#1b6a8c", fillOpacity: 0.5 })
          .bindPopup(popupFor(l)).addTo(map);
      }
      points.push(l.from, l.to);
    });
    markers.forEach(function (m) {
      if (m.radius) {  // a place sized by its count: a circle, its numbers in the table beside the map
        L.circleMarker([m.lat, m.lon], { radius: m.radius, color: "#1b6a8c", weight: 1, fillColor: "#1b6a8c",
                                          fillOpacity: 0.45 }).bindPopup(popupFor(m)).addTo(map);
      } else {
        L.marker([m.lat, m.lon], { title: m.title, alt: m.title, keyboard: true }).bindPopup(popupFor(m)).addTo(map);
      }
      points.push([m.lat, m.lon]);
    });
    if (points.length === 1) { map.setView(points[0], 9); } else { map.fitBounds(points, { padding: [20, 20], maxZoom: 10 }); }
  }
  document.querySelectorAll(".biofed-map").forEach(function (container) {
    try { build(container); } catch (e) {
      var notice = container.closest("figure").querySelector(".map-notice");
      notice.textContent = "The map could not be drawn: " + e.message;
      notice.hidden = false;
    }
  });
}
