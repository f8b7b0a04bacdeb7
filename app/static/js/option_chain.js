// Option chain: polls the JSON endpoint and redraws the table (no inline scripts: CSP).
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

  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) { td.className = cls; }
    return td;
  }
  function signed(v) { var n = Number(v); return n > 0 ? "text-success" : (n < 0 ? "text-error" : ""); }

  function render(data) {
    meta.textContent = data.underlying + " " + data.underlying_ltp + " · ATM " + data.atm_strike +
      " · expiry " + data.expiry + " · source " + data.source;
    if (expirySelect.options.length !== data.expiries.length) {
      expirySelect.innerHTML = "";
      data.expiries.forEach(function (e) {
        var o = document.createElement("option"); o.value = e; o.textContent = e; expirySelect.appendChild(o);
      });
    }
    expirySelect.value = data.expiry;
    body.innerHTML = "";
    data.rows.forEach(function (r) {
      var tr = document.createElement("tr");
      var ce = r.ce || {}, pe = r.pe || {};
      var atm = r.strike === data.atm_strike;
      if (atm) { tr.className = "bg-base-200 font-semibold"; tr.setAttribute("data-atm", "1"); }
      [ce.oi, ce.volume, ce.iv, ce.delta, ce.theta].forEach(function (v) { tr.appendChild(cell(v)); });
      tr.appendChild(cell(ce.change, signed(ce.change)));
      tr.appendChild(cell(ce.ltp, "font-semibold"));
      tr.appendChild(cell(r.strike, "text-center font-bold"));
      tr.appendChild(cell(pe.ltp, "font-semibold"));
      tr.appendChild(cell(pe.change, signed(pe.change)));
      [pe.theta, pe.delta, pe.iv, pe.volume, pe.oi].forEach(function (v) { tr.appendChild(cell(v)); });
      body.appendChild(tr);
    });
  }

  function load() {
    var params = new URLSearchParams(new FormData(form));
    window.AlgoMirror.fetchJSON(root.getAttribute("data-url") + "?" + params.toString())
      .then(function (r) {
        if (r.ok) { errorBox.classList.add("hidden"); render(r.data); }
        else { errorBox.textContent = r.data.message || "The option chain is unavailable."; errorBox.classList.remove("hidden"); }
      })
      .catch(function () { errorBox.textContent = "The server did not answer."; errorBox.classList.remove("hidden"); })
      .finally(function () { clearTimeout(timer); timer = setTimeout(load, 3000); });
  }

  form.addEventListener("change", function (event) {
    if (event.target.name === "underlying") { expirySelect.innerHTML = ""; }
    load();
  });
  load();
})();
