// Option chain: polls the JSON endpoint and redraws the table (no inline scripts: CSP).
// Numbers arrive formatted by the server (app/domain/formatting.py): this file only places them.
(function () {
  "use strict";
  var root = document.querySelector("[data-chain]");
  if (!root) { return; }
  var form = root.querySelector("[data-chain-form]");
  var body = root.querySelector("[data-chain-body]");
  var meta = root.querySelector("[data-chain-meta]");
  var errorBox = root.querySelector("[data-chain-error]");
  var expirySelect = form.querySelector('[name="expiry"]');
  var timer = null;
  var ITM = "bg-warning/20";
  var CE_COLUMNS = ["oi", "volume", "iv", "delta", "theta", "change", "ltp"];
  var PE_COLUMNS = CE_COLUMNS.slice().reverse();

  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    td.className = "text-right tabular-nums" + (cls ? " " + cls : "");
    return td;
  }
  function tone(raw) { var n = Number(raw); return n > 0 ? "text-success" : (n < 0 ? "text-error" : ""); }

  function legCells(tr, leg, side, columns) {
    var shown = leg ? leg.display : {};
    columns.forEach(function (key) {
      var cls = key === "ltp" ? "font-semibold" : (key === "change" && leg ? tone(leg.change) : "");
      if (leg && leg.itm) { cls += " " + ITM; }
      var td = cell(shown[key], cls);
      td.setAttribute("data-col", side + "-" + key);
      if (leg && leg.itm) { td.setAttribute("data-itm", "1"); }
      tr.appendChild(td);
    });
  }

  function strikeCell(r) {
    var td = document.createElement("td");
    td.className = "text-center font-bold tabular-nums";
    td.setAttribute("data-col", "strike");
    td.appendChild(document.createTextNode(r.strike_display));
    if (r.atm) {
      var badge = document.createElement("span");
      badge.className = "badge badge-xs badge-primary ml-1";
      badge.textContent = "ATM";
      td.appendChild(badge);
    }
    return td;
  }

  function render(data) {
    meta.textContent = data.underlying + " " + data.underlying_ltp_display + " · ATM " + data.atm_strike_display +
      " · expiry " + data.expiry + " · source " + data.source;
    var known = Array.prototype.map.call(expirySelect.options, function (o) { return o.value; }).join("|");
    if (known !== data.expiries.join("|")) {
      expirySelect.innerHTML = "";
      data.expiries.forEach(function (e) {
        var o = document.createElement("option"); o.value = e; o.textContent = e; expirySelect.appendChild(o);
      });
    }
    expirySelect.value = data.expiry;
    body.innerHTML = "";
    data.rows.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-strike", r.strike_display);
      if (r.atm) { tr.className = "bg-base-200 font-semibold"; tr.setAttribute("data-atm", "1"); }
      legCells(tr, r.ce, "ce", CE_COLUMNS);
      tr.appendChild(strikeCell(r));
      legCells(tr, r.pe, "pe", PE_COLUMNS);
      body.appendChild(tr);
    });
  }

  function schedule() { clearTimeout(timer); timer = setTimeout(load, 3000); }

  function load() {
    if (document.hidden) { schedule(); return; }  // a background tab costs nothing
    var params = new URLSearchParams(new FormData(form));
    window.AlgoMirror.fetchJSON(root.getAttribute("data-url") + "?" + params.toString())
      .then(function (r) {
        if (r.ok) { errorBox.classList.add("hidden"); render(r.data); }
        else { errorBox.textContent = r.data.message || "The option chain is unavailable."; errorBox.classList.remove("hidden"); }
      })
      .catch(function () { errorBox.textContent = "The server did not answer."; errorBox.classList.remove("hidden"); })
      .finally(schedule);
  }

  form.addEventListener("change", function (event) {
    if (event.target.name === "underlying") { expirySelect.innerHTML = ""; }
    load();
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { load(); } });
  load();
})();
