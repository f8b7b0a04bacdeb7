// Kill-switch report: polls GET /api/kill-switches/<id> every 1.5 s until the press is done and
// re-renders per account what was cancelled, closed, failed and is still open.
(function () {
  "use strict";
  // 1.5 s: 40 polls a minute, so two open pages and the dashboard stay inside the API tier (100/min).
  var POLL_MS = 1500;
  var root = document.querySelector("[data-kill-switch]");
  if (!root) { return; }
  var KEYS = ["cancelled", "closed", "failed", "still_open"];

  function itemText(item) {
    if (typeof item === "string") { return item; }
    var text = String(item.symbol || JSON.stringify(item));
    if (item.quantity !== undefined && item.quantity !== null) { text += " " + item.quantity; }
    if (item.reason) { text += ": " + item.reason; }
    return text;
  }

  function cell(items, key) {
    var td = document.createElement("td");
    td.setAttribute("data-field", key);
    if (!items || !items.length) { td.textContent = "\u2014"; return td; }
    items.forEach(function (item) {
      var div = document.createElement("div");
      div.textContent = itemText(item);
      td.appendChild(div);
    });
    return td;
  }

  function render(data) {
    root.querySelector("[data-ks-status]").textContent = data.status;
    var body = root.querySelector("[data-ks-accounts]");
    var rows = data.accounts.map(function (a) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-ks-account", String(a.account_id));
      var name = document.createElement("td");
      name.textContent = a.name;
      tr.appendChild(name);
      KEYS.forEach(function (key) { tr.appendChild(cell(a[key], key)); });
      return tr;
    });
    if (rows.length) { body.replaceChildren.apply(body, rows); }
    root.setAttribute("data-final", data.final ? "1" : "0");
  }

  function poll() {
    window.AlgoMirror.fetchJSON(root.getAttribute("data-url"))
      .then(function (r) { if (r.ok) { render(r.data); } })
      .catch(function () { /* the next poll retries */ })
      .finally(function () { if (root.getAttribute("data-final") !== "1") { setTimeout(poll, POLL_MS); } });
  }
  if (root.getAttribute("data-final") !== "1") { setTimeout(poll, POLL_MS); }
})();
