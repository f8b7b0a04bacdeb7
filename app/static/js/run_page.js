// Run page: polls GET /api/runs/<id> about every 1.5 s until the run is final, and re-renders
// the accounts, legs, child orders and exit requests from that JSON (built from the database,
// so any web worker answers the same). Buttons are POST forms carrying the CSRF token; each asks
// for confirmation first. No inline scripts (the CSP forbids them).
(function () {
  "use strict";
  // 1.5 s: 40 polls a minute, so two open pages and the dashboard stay inside the API tier (100/min).
  var POLL_MS = 1500;
  var root = document.querySelector("[data-run-page]");
  if (!root) { return; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function postForm(action, confirmText, label, btnClass, testid) {
    var attrs = { type: "submit", "class": btnClass };
    if (testid) { attrs["data-testid"] = testid; }
    return el("form", { method: "post", action: action, "data-run-confirm": confirmText }, [
      el("input", { type: "hidden", name: "csrf_token", value: window.AlgoMirror.csrfToken() }),
      el("button", attrs, [label])
    ]);
  }

  function accountUrl(template, accountId) { return template.replace("/accounts/0/", "/accounts/" + accountId + "/"); }
  function legUrl(accountId, legNumber) {
    return accountUrl(root.getAttribute("data-close-leg"), accountId).replace(/\/legs\/0\//, "/legs/" + legNumber + "/");
  }

  function intentText(i) {
    var text = i.purpose + " #" + i.child + (i.attempt > 1 ? " try " + i.attempt : "") + " " + i.action + " " +
      i.quantity + ": " + i.label;
    return i.flagged ? text + " \u2691 " + i.note : text;
  }

  function positionText(check) {
    var text = "Position check: " + (check.ok ? "matches the broker" : "differs from the broker");
    (check.differences || []).forEach(function (d) {
      text += "; " + d.symbol + " expected " + d.expected + ", broker " + d.actual;
    });
    return text;
  }

  function accountCard(a) {
    var body = el("div", { "class": "card-body p-4 gap-2" }, [
      el("div", { "class": "flex flex-wrap items-center gap-2" }, [
        el("h2", { "class": "card-title text-lg" }, [a.name]),
        el("span", { "class": "badge badge-sm", "data-field": "status" }, [a.status]),
        a.flagged ? el("span", { "class": "badge badge-sm badge-warning" }, ["flagged"]) : null
      ]),
      a.skip_reason ? el("p", { "class": "text-sm", "data-field": "skip_reason" }, ["Skipped: " + a.skip_reason]) : null,
      a.flag_note ? el("p", { "class": "text-sm text-warning whitespace-pre-line", "data-field": "flag_note" }, [a.flag_note]) : null,
      a.position_check ? el("p", { "class": "text-sm", "data-field": "position_check" }, [positionText(a.position_check)]) : null
    ]);
    if (!a.skip_reason) {
      var rows = a.legs.map(function (leg) {
        var list = el("ul", {}, leg.intents.map(function (i) {
          return el("li", { "data-intent": String(i.id), "data-state": i.state }, [intentText(i)]);
        }));
        var closeCell = el("td", {}, [leg.held ? postForm(legUrl(a.id, leg.number),
          "Close leg " + leg.number + " on " + a.name + "?", "Close leg", "btn btn-xs btn-outline") : null]);
        return el("tr", { "data-leg": String(leg.number) }, [
          el("td", {}, [String(leg.number)]), el("td", {}, [leg.symbol]), el("td", {}, [leg.action]),
          el("td", { "class": "text-right" }, [String(leg.ordered)]),
          el("td", { "class": "text-right" }, [String(leg.filled)]),
          el("td", { "class": "text-right", "data-field": "held" }, [String(leg.held)]),
          el("td", {}, [list]), closeCell
        ]);
      });
      var head = el("tr", {}, ["Leg", "Symbol", "Side", "Ordered", "Filled", "Held", "Orders", ""].map(function (h, n) {
        return el("th", n >= 3 && n <= 5 ? { "class": "text-right" } : {}, [h]);
      }));
      body.appendChild(el("div", { "class": "overflow-x-auto" }, [
        el("table", { "class": "table table-xs" }, [el("thead", {}, [head]), el("tbody", {}, rows)])
      ]));
      body.appendChild(el("div", { "class": "flex flex-wrap gap-2" }, [
        postForm(accountUrl(root.getAttribute("data-close-account"), a.id), "Close this run on " + a.name + "?",
          "Close on " + a.name, "btn btn-sm btn-outline btn-warning", "close-account-" + a.name),
        postForm(accountUrl(root.getAttribute("data-retry"), a.id), "Retry the failed legs on " + a.name + "?",
          "Retry failed legs", "btn btn-sm btn-outline", "retry-account-" + a.name)
      ]));
    }
    return el("div", { "class": "card bg-base-100 shadow", "data-run-account": String(a.id), "data-testid": "account-" + a.name }, [body]);
  }

  function money(value) { return value === null || value === undefined ? "\u2014" : "\u20b9" + value; }

  function riskPanel(risk) {
    var parts = [];
    var rules = risk.rules || [];
    parts.push(el("p", { "class": "text-sm" }, [rules.length ? rules.join(" \u00b7 ") : "No risk rules on this run."]));
    var live = risk.live;
    if (!live) {
      parts.push(el("p", { "class": "text-sm opacity-70", "data-field": "risk-state" }, ["Not evaluated yet (the monitor runs in the background service)."]));
      return parts;
    }
    parts.push(el("p", { "class": "text-sm", "data-field": "risk-state" }, [
      (live.reliable ? "Watching" : "Holding: prices unreliable (" + live.reason + ")") +
      " \u00b7 evaluated " + new Date(live.evaluated_at).toLocaleTimeString("en-IN") +
      (live.combined_pnl !== null ? " \u00b7 combined P&L " + money(live.combined_pnl) : "")]));
    if (live.units.length) {
      var head = el("tr", {}, ["Account", "P&L", "Max loss at", "Max profit at", "Trailing peak", "Trailing stop"].map(function (h) { return el("th", {}, [h]); }));
      var rows = live.units.map(function (u) {
        var t = u.trailing;
        return el("tr", { "data-risk-unit": u.name }, [el("td", {}, [u.name]), el("td", { "data-field": "pnl" }, [money(u.pnl)]),
          el("td", {}, [money(u.max_loss)]), el("td", {}, [money(u.max_profit)]),
          el("td", {}, [t && t.armed ? money(t.peak) : (t ? "not armed" : "\u2014")]),
          el("td", {}, [t && t.armed ? money(t.stop) : "\u2014"])]);
      });
      parts.push(el("table", { "class": "table table-xs" }, [el("thead", {}, [head]), el("tbody", {}, rows)]));
    }
    if (live.legs.length) {
      parts.push(el("table", { "class": "table table-xs" }, [
        el("thead", {}, [el("tr", {}, ["Account", "Leg", "Entry", "LTP", "Stop", "Target"].map(function (h) { return el("th", {}, [h]); }))]),
        el("tbody", {}, live.legs.map(function (l) {
          return el("tr", {}, [el("td", {}, [l.account]), el("td", {}, [String(l.leg)]), el("td", {}, [l.entry]),
            el("td", {}, [l.ltp || "\u2014"]), el("td", {}, [l.stop || "\u2014"]), el("td", {}, [l.target || "\u2014"])]);
        }))]));
    }
    parts.push(el("p", { "class": "text-xs opacity-70" }, [live.prices.map(function (p) {
      return p.symbol + " " + (p.ltp || "\u2014") + (p.age_s !== null ? " (" + p.age_s + " s old)" : "") + (p.usable ? "" : " " + p.reason);
    }).join(" \u00b7 ")]));
    return parts;
  }

  function renderRisk(risk, exits) {
    var box = root.querySelector("[data-run-risk]");
    if (box && risk) { box.replaceChildren.apply(box, riskPanel(risk)); }
    root.dispatchEvent(new CustomEvent("run-risk", { detail: { risk: risk, exits: exits || [] } }));
  }

  function latencyText(l) {
    return l.count ? "p50 " + l.p50_ms + " ms \u00b7 p95 " + l.p95_ms + " ms (" + l.count + ")" : "\u2014";
  }

  function render(data) {
    var status = root.querySelector("[data-run-status]");
    if (status) { status.textContent = data.status; }
    ["ack", "fill"].forEach(function (key) {
      var cell = root.querySelector('[data-latency="' + key + '"]');
      if (cell) { cell.textContent = latencyText(data.latency[key]); }
    });
    var note = root.querySelector("[data-run-note]");
    if (note) { note.textContent = data.note || ""; }
    renderRisk(data.risk, data.exits);
    var accounts = root.querySelector("[data-run-accounts]");
    if (accounts) { accounts.replaceChildren.apply(accounts, data.accounts.map(accountCard)); }
    var exits = root.querySelector("[data-run-exits]");
    if (exits) {
      exits.replaceChildren.apply(exits, data.exits.map(function (e) {
        return el("tr", { "data-exit": String(e.id) }, [
          el("td", {}, [String(e.id)]), el("td", {}, [e.scope]), el("td", {}, [e.purpose]), el("td", {}, [e.status]),
          el("td", { "class": "text-xs" }, [e.report ? JSON.stringify(e.report) : ""])
        ]);
      }));
    }
    root.setAttribute("data-final", data.final ? "1" : "0");
    var stamp = root.querySelector("[data-run-updated]");
    if (stamp) { stamp.textContent = "updated " + new Date().toLocaleTimeString("en-IN"); }
  }

  // One delegated handler: forms re-rendered from JSON ask for confirmation too.
  root.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-run-confirm]");
    if (form && !window.confirm(form.getAttribute("data-run-confirm"))) { event.preventDefault(); }
  });

  function poll() {
    window.AlgoMirror.fetchJSON(root.getAttribute("data-url"))
      .then(function (r) { if (r.ok) { render(r.data); } })
      .catch(function () { /* keep what is shown; the next poll retries */ })
      .finally(function () {
        // A final run stops polling; a new exit request (a button press) reloads the page anyway.
        if (root.getAttribute("data-final") !== "1") { setTimeout(poll, POLL_MS); }
      });
  }
  var initial = root.querySelector("[data-run-risk]");
  if (initial) {
    try {
      renderRisk(JSON.parse(initial.getAttribute("data-risk")), JSON.parse(initial.getAttribute("data-exits")));
    } catch (e) { /* the first poll renders it */ }
  }
  if (root.getAttribute("data-final") !== "1") { setTimeout(poll, POLL_MS); }
})();
