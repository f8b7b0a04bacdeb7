// The run page's premium chart: the strategy's net premium per unit as candles of its Supertrend
// timeframe, the Supertrend line (green while bullish, red while bearish) and a marker at each exit
// request, drawn with lightweight-charts 5 (app/static/vendor/). run_page.js dispatches "run-risk"
// on [data-run-page] with {risk, exits} after each render; this file only listens.
// The container reports what it drew (data-chart-state, data-candles, data-line-points,
// data-markers) so tests can hold it against the JSON. CSP: no inline scripts, no attribution logo.
(function () {
  "use strict";
  var root = document.querySelector("[data-run-page]");
  var box = root && root.querySelector("[data-premium-chart]");
  var lib = window.LightweightCharts;
  if (!box) { return; }
  if (!lib) { box.setAttribute("data-chart-state", "no-library"); return; }
  var chart = null, candles = null, bull = null, bear = null, markers = null;

  function ist(t) {
    return new Date(t * 1000).toLocaleTimeString("en-IN", { timeZone: "Asia/Kolkata", hour: "2-digit", minute: "2-digit" });
  }

  function report(state, n, points, marks) {
    box.hidden = state !== "drawn";  // a run without a Supertrend exit has no premium chart
    box.setAttribute("data-chart-state", state);
    box.setAttribute("data-candles", String(n));
    box.setAttribute("data-line-points", String(points));
    box.setAttribute("data-markers", String(marks));
  }

  function ensure() {
    if (chart) { return; }
    chart = lib.createChart(box, {
      autoSize: true,
      layout: { attributionLogo: false, background: { type: "solid", color: "transparent" }, textColor: "#6b7280" },
      grid: { vertLines: { color: "rgba(128,128,128,0.15)" }, horzLines: { color: "rgba(128,128,128,0.15)" } },
      timeScale: { timeVisible: true, secondsVisible: false, borderVisible: false,
        tickMarkFormatter: function (t) { return ist(t); } },
      rightPriceScale: { borderVisible: false },
      localization: { timeFormatter: function (t) { return ist(t); } }
    });
    candles = chart.addSeries(lib.CandlestickSeries, { priceLineVisible: false });
    var line = { lineWidth: 2, priceLineVisible: false, lastValueVisible: false };
    bull = chart.addSeries(lib.LineSeries, Object.assign({ color: "#16a34a", title: "Supertrend" }, line));
    bear = chart.addSeries(lib.LineSeries, Object.assign({ color: "#dc2626" }, line));
    markers = lib.createSeriesMarkers(candles, []);
  }

  function draw(detail) {
    var data = detail.risk && detail.risk.live && detail.risk.live.chart;
    if (!data || !data.candles || !data.candles.length) { report("empty", 0, 0, 0); return; }
    ensure();
    var rows = data.candles;
    candles.setData(rows.map(function (c) {
      return { time: c.time, open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close) };
    }));
    // One line per trend; a gap (whitespace point) where the other trend holds, so they never join.
    function side(dir) {
      return rows.map(function (c) {
        return c.line !== null && c.direction === dir ? { time: c.time, value: c.line } : { time: c.time };
      });
    }
    bull.setData(side(1));
    bear.setData(side(-1));
    var first = rows[0].time, last = rows[rows.length - 1].time;
    var marks = (detail.exits || []).map(function (e) {
      var at = Math.floor(new Date(e.created_at).getTime() / 1000);
      var slot = rows.filter(function (c) { return c.time <= at; }).pop();
      return slot && at >= first ? { time: slot.time, position: "aboveBar", color: "#dc2626", shape: "arrowDown",
        text: e.purpose + " exit" } : null;
    }).filter(function (m) { return m !== null && m.time <= last + 3600; });
    markers.setMarkers(marks);
    report("drawn", rows.length, rows.filter(function (c) { return c.line !== null; }).length, marks.length);
  }

  root.addEventListener("run-risk", function (event) { draw(event.detail || {}); });
})();
