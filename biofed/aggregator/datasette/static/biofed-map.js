// BioFed's small maps: markers from a JSON island, tiles from the configured server.
// Popups are built with textContent (names come from signed records, never run as HTML);
// when the tile server cannot be reached the page says so and the markers stay.
// Leaflet is datasette-leaflet's ES module build (its URL set by that plugin on every page).
const L = await import(window.datasette.leaflet.JAVASCRIPT_URL);

{
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
    var points = [];
    markers.forEach(function (m) {
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
      L.marker([m.lat, m.lon], { title: m.title, alt: m.title, keyboard: true }).bindPopup(popup).addTo(map);
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
