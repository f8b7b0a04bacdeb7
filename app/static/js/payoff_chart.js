// Payoff chart of the strategy preview: P&L at expiry and today (T+0) against the underlying's
// price, drawn with lightweight-charts 5 (app/static/vendor/, copied from npm by `make setup`) on
// its price-based horizontal scale (createOptionsChart). strategy_preview.js dispatches
// "strategy-preview" on [data-strategy-preview] after each render; this file only listens.
// CSP: no inline scripts; the library's attribution logo is off (it injects a <style> element,
// which style-src 'self' refuses), and the template links TradingView instead.
// The container reports what it drew (data-chart-state, data-expiry-points, data-today-points,
// data-spot, data-spot-at, data-breakevens) so tests can hold it against the JSON.
(function () {
  "use strict";
  var root = document.querySelector("[data-strategy-preview]");
  var box = root && root.querySelector("[data-payoff-chart]");
  var lib = window.LightweightCharts;
  if (!box) { return; }
  if (!lib) { box.setAttribute("data-chart-state", "no-library"); return; }

  var COLORS = { expiry: "#2563eb", today: "#f59e0b", spot: "#16a34a", breakeven: "#dc2626", zero: "#9ca3af" };
  var rupees = new Intl.NumberFormat("en-IN", { style: "currency", currency: "INR", maximumFractionDigits: 0 });
  var chart = null;

  function report(state, attrs) {
    box.setAttribute("data-chart-state", state);
    ["expiry-points", "today-points", "spot", "spot-at", "breakevens"].forEach(function (name) {
      box.setAttribute("data-" + name, attrs[name] === undefined ? "" : String(attrs[name]));
    });
  }

  function clear() {
    if (chart) { chart.remove(); chart = null; }
    report("empty", {});
  }

  // The grid point nearest a price: the horizontal scale places points by index, so a mark
  // sits on one of the series' own points (the grid is even, about 1 % of the range apart).
  function nearest(xs, price) {
    var best = xs[0];
    xs.forEach(function (x) { if (Math.abs(x - price) < Math.abs(best - price)) { best = x; } });
    return best;
  }

  function draw(payoff) {
    var points = payoff.points || [];
    var xs = points.map(function (p) { return Number(p.price); });
    var expiry = points.map(function (p, i) { return { time: xs[i], value: Number(p.expiry) }; });
    var today = points.filter(function (p) { return p.today !== null && p.today !== undefined; })
      .map(function (p) { return { time: Number(p.price), value: Number(p.today) }; });
    if (chart) { chart.remove(); }
    chart = lib.createOptionsChart(box, {
      autoSize: true,
      layout: { attributionLogo: false, background: { type: "solid", color: "transparent" }, textColor: "#6b7280" },
      grid: { vertLines: { color: "rgba(128,128,128,0.15)" }, horzLines: { color: "rgba(128,128,128,0.15)" } },
      localization: { precision: 0, priceFormatter: function (v) { return rupees.format(v); } },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false },
      handleScroll: false,
      handleScale: false,
    });
    var line = { lineWidth: 2, priceLineVisible: false, lastValueVisible: false };
    var expirySeries = chart.addSeries(lib.LineSeries, Object.assign({ color: COLORS.expiry, title: "At expiry" }, line));
    expirySeries.setData(expiry);
    expirySeries.createPriceLine({ price: 0, color: COLORS.zero, lineWidth: 1, lineStyle: lib.LineStyle.Dotted,
      axisLabelVisible: false, title: "" });
    var spotSeries = expirySeries;
    if (today.length) {
      var todaySeries = chart.addSeries(lib.LineSeries, Object.assign({ color: COLORS.today, title: "Today (T+0)",
        lineStyle: lib.LineStyle.Dashed }, line));
      todaySeries.setData(today);
      spotSeries = todaySeries;
    }
    var spot = Number(payoff.spot);
    var spotAt = nearest(xs, spot);
    var spotMarker = { time: spotAt, position: "belowBar", shape: "arrowUp", color: COLORS.spot,
      text: "Spot " + payoff.display.spot };
    var breakevens = (payoff.breakevens || []).map(function (b) {
      return { time: nearest(xs, Number(b)), position: "inBar", shape: "circle", color: COLORS.breakeven };
    }).sort(function (a, b) { return a.time - b.time; });
    if (spotSeries === expirySeries) {
      lib.createSeriesMarkers(expirySeries, breakevens.concat([spotMarker]).sort(function (a, b) { return a.time - b.time; }));
    } else {
      lib.createSeriesMarkers(expirySeries, breakevens);
      lib.createSeriesMarkers(spotSeries, [spotMarker]);
    }
    chart.timeScale().fitContent();
    report("drawn", { "expiry-points": expiry.length, "today-points": today.length, spot: payoff.spot,
      "spot-at": spotAt, breakevens: breakevens.length });
  }

  root.addEventListener("strategy-preview", function (event) {
    var payoff = event.detail && event.detail.payoff;
    if (payoff && payoff.available && payoff.points && payoff.points.length) { draw(payoff); } else { clear(); }
  });
})();
