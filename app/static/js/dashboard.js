// Live dashboard: polls the JSON endpoint and updates cards and totals in place.
(function () {
  "use strict";
  var root = document.querySelector("[data-dashboard]");
  if (!root) { return; }
  var inr = new Intl.NumberFormat("en-IN", { style: "currency", currency: "INR", maximumFractionDigits: 2 });
  var STATUS_CLASS = { connected: "badge-success", disconnected: "badge-error", auth_error: "badge-warning" };

  function show(el, value) {
    if (value === null || value === undefined || value === "") { el.textContent = "—"; return; }
    if (el.hasAttribute("data-money")) {
      var n = Number(value);
      el.textContent = inr.format(n);
      if (el.hasAttribute("data-signed")) {
        el.classList.toggle("text-success", n > 0);
        el.classList.toggle("text-error", n < 0);
      }
    } else {
      el.textContent = String(value);
    }
  }

  function render(data) {
    Object.keys(data.totals).forEach(function (key) {
      root.querySelectorAll('[data-total="' + key + '"]').forEach(function (el) { show(el, data.totals[key]); });
    });
    data.accounts.forEach(function (card) {
      var el = root.querySelector('[data-card="' + card.id + '"]');
      if (!el) { return; }
      el.querySelectorAll("[data-field]").forEach(function (f) {
        var key = f.getAttribute("data-field");
        if (key === "status") {
          f.textContent = card.status === "auth_error" ? "login expired" : card.status;
          f.className = "badge badge-sm " + (STATUS_CLASS[card.status] || "badge-ghost");
        } else if (key === "error") {
          f.textContent = card.error || "";
        } else if (key === "entries_blocked") {
          f.textContent = card.entries_blocked ? "Entries blocked for today: " + card.entries_blocked : "";
        } else {
          show(f, card[key]);
        }
      });
    });
    var source = document.querySelector("[data-market-source]");
    if (source) { source.textContent = data.market_data_source || "—"; }
    var stamp = document.querySelector("[data-dashboard-updated]");
    if (stamp) { stamp.textContent = "updated " + new Date().toLocaleTimeString("en-IN"); }
  }

  function poll() {
    window.AlgoMirror.fetchJSON(root.getAttribute("data-url"))
      .then(function (r) { if (r.ok) { render(r.data); } })
      .catch(function () { /* keep the last figures; the next poll retries */ })
      .finally(function () { setTimeout(poll, 5000); });
  }

  document.querySelectorAll("[data-money]").forEach(function (el) { show(el, el.textContent.trim() === "—" ? null : el.textContent.trim()); });
  setTimeout(poll, 5000);
})();
