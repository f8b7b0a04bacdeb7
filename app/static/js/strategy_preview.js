// Strategy preview: fetches /api/strategies/<id>/preview and fills the preview tables.
// No inline scripts (CSP). Numbers arrive formatted by the server: this file only places them.
(function () {
  "use strict";
  var root = document.querySelector("[data-strategy-preview]");
  if (!root) { return; }
  var meta = root.querySelector("[data-preview-meta]");
  var errorBox = root.querySelector("[data-preview-error]");
  var legsBody = root.querySelector("[data-preview-legs]");
  var payoffBox = root.querySelector("[data-preview-payoff]");
  var pointsBody = root.querySelector("[data-preview-points]");
  var sizingBox = root.querySelector("[data-preview-sizing]");
  var accountsBody = root.querySelector("[data-preview-accounts]");
  var totalFoot = root.querySelector("[data-preview-total]");
  var TABLE_EVERY = 5;  // one payoff row in five: 21 rows of the 101 points

  function cell(text, right) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (right) { td.className = "text-right tabular-nums"; }
    return td;
  }
  function row(cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (c) { tr.appendChild(c); });
    return tr;
  }
  function field(name, text) { root.querySelector('[data-preview-field="' + name + '"]').textContent = text; }
  function showError(text) { errorBox.textContent = text; errorBox.classList.remove("hidden"); }

  function renderLegs(legs) {
    legsBody.innerHTML = "";
    legs.forEach(function (leg) {
      if (leg.status !== "resolved") {
        var tr = row([cell(leg.number), cell(leg.label)]);
        var td = cell(leg.message);
        td.colSpan = 11; td.className = "text-error";
        tr.appendChild(td); tr.setAttribute("data-leg-error", leg.reason);
        legsBody.appendChild(tr);
        return;
      }
      var d = leg.display;
      var tr2 = row([cell(leg.number), cell(leg.label), cell(leg.symbol), cell(d.expiry), cell(d.strike, true),
        cell(d.quantity, true), cell(d.ltp, true), cell(d.limit_price, true), cell(d.iv, true), cell(d.delta, true),
        cell(d.gamma, true), cell(d.theta, true), cell(d.vega, true)]);
      tr2.setAttribute("data-symbol", leg.symbol);
      legsBody.appendChild(tr2);
    });
  }

  function renderPayoff(payoff) {
    if (!payoff || !payoff.available) {
      payoffBox.classList.add("hidden");
      if (payoff && payoff.note) { meta.textContent += " " + payoff.note; }
      return;
    }
    var d = payoff.display;
    field("spot", d.spot); field("max_profit", d.max_profit); field("max_loss", d.max_loss);
    field("breakevens", d.breakevens.join(" · "));
    ["delta", "gamma", "theta", "vega"].forEach(function (k) { field(k, d.greeks ? d.greeks[k] : "—"); });
    root.querySelector("[data-preview-note]").textContent = (payoff.note || "") + " Basis: " + payoff.basis + ".";
    pointsBody.innerHTML = "";
    payoff.points.forEach(function (p, i) {
      if (i % TABLE_EVERY !== 0 && i !== payoff.points.length - 1) { return; }
      pointsBody.appendChild(row([cell(p.display.price, true), cell(p.display.expiry, true), cell(p.display.today, true)]));
    });
    payoffBox.classList.remove("hidden");
  }

  // One line per leg: "L1 60 lots · 3,900 qty · 3 orders (1,755 + 1,755 + 390)".
  function legsCell(legs, withChildren) {
    var td = document.createElement("td");
    (legs || []).forEach(function (d, i) {
      var line = document.createElement("div");
      line.className = "tabular-nums whitespace-nowrap";
      line.setAttribute("data-sizing-leg", String(i + 1));
      line.textContent = "L" + (i + 1) + " " + d.lots + " lots · " + d.quantity + " qty · " + d.child_orders +
        (d.child_orders === "1" ? " order" : " orders") + (withChildren && d.child_quantities ? " (" + d.child_quantities + ")" : "");
      td.appendChild(line);
    });
    return td;
  }

  function renderTotal(total) {
    totalFoot.innerHTML = "";
    if (!total) { return; }
    var label = cell("Total (" + total.accounts + (total.accounts === 1 ? " account trades)" : " accounts trade)"));
    var blank = function () { return cell(""); };
    var tr = row([label, blank(), blank(), blank(), legsCell(total.display.legs, false),
      cell(total.display.margin_used, true), blank(), blank()]);
    tr.className = "font-semibold";
    tr.setAttribute("data-sizing-total", "");
    totalFoot.appendChild(tr);
  }

  function renderSizing(sizing) {
    if (!sizing) { sizingBox.classList.add("hidden"); return; }
    var margin = root.querySelector("[data-preview-margin]");
    accountsBody.innerHTML = "";
    totalFoot.innerHTML = "";
    if (sizing.error) {
      margin.textContent = sizing.error;
    } else {
      margin.textContent = "Margin per strategy lot: " + sizing.display.margin_per_strategy_lot + " (" +
        sizing.margin_source.replace("_", " ") + "). " + sizing.formula + (sizing.notes.length ? " " + sizing.notes.join(" ") : "");
      sizing.accounts.forEach(function (a) {
        var note = a.error || a.skip_reason || (a.warnings || []).join(" ");
        var d = a.display || {};
        var legs = a.error || a.skip_reason ? [] : d.legs;
        accountsBody.appendChild(row([cell(a.name), cell(d.available_margin, true),
          cell(d.usable_margin, true), cell(a.strategy_lots, true), legsCell(legs, true),
          cell(d.margin_used, true), cell(a.binding), cell(note)]));
      });
      renderTotal(sizing.total);
    }
    sizingBox.classList.remove("hidden");
  }

  function render(data) {
    meta.textContent = "Resolved through " + (data.source || "no account") + " at " + data.resolved_at + ".";
    if (data.error) { showError(data.error); } else { errorBox.classList.add("hidden"); }
    renderLegs(data.legs || []);
    renderPayoff(data.payoff);
    renderSizing(data.sizing);
    root.dispatchEvent(new CustomEvent("strategy-preview", { detail: data }));  // payoff_chart.js draws the chart
  }

  function load() {
    meta.textContent = "Resolving…";
    window.AlgoMirror.fetchJSON(root.getAttribute("data-url"))
      .then(function (r) {
        if (r.data && r.data.legs) { render(r.data); }
        else { showError((r.data && (r.data.message || r.data.error)) || "The preview is unavailable."); }
      })
      .catch(function () { showError("The server did not answer."); });
  }

  root.querySelector("[data-preview-refresh]").addEventListener("click", load);
  load();
})();
