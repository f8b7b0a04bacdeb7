// AlgoMirror front-end helpers. No inline handlers: the CSP forbids them.
(function () {
  "use strict";
  var THEME_KEY = "algomirror-theme";

  function currentTheme() {
    return document.documentElement.getAttribute("data-theme") === "dark" ? "dark" : "light";
  }

  function setTheme(theme) {
    document.documentElement.setAttribute("data-theme", theme);
    try { localStorage.setItem(THEME_KEY, theme); } catch (e) { /* private mode */ }
  }

  // The CSRF token for fetch() calls: sent as X-CSRFToken on every state-changing request.
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  window.AlgoMirror = {
    csrfToken: csrfToken,
    fetchJSON: function (url, options) {
      options = options || {};
      var method = (options.method || "GET").toUpperCase();
      var headers = Object.assign({ "Accept": "application/json" }, options.headers || {});
      if (method !== "GET" && method !== "HEAD") {
        headers["X-CSRFToken"] = csrfToken();
        if (options.body && typeof options.body !== "string") {
          headers["Content-Type"] = "application/json";
          options.body = JSON.stringify(options.body);
        }
      }
      return fetch(url, Object.assign({}, options, { method: method, headers: headers, credentials: "same-origin" }))
        .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, status: r.status, data: data }; }); });
    }
  };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-theme-toggle]").forEach(function (btn) {
      btn.addEventListener("click", function () { setTheme(currentTheme() === "dark" ? "light" : "dark"); });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
    // Book pages reload themselves (keeping filters) while the tab is visible.
    var auto = document.querySelector("[data-autorefresh]");
    if (auto) {
      var seconds = Number(auto.getAttribute("data-autorefresh")) || 15;
      setInterval(function () { if (!document.hidden) { window.location.reload(); } }, seconds * 1000);
    }
    document.querySelectorAll("[data-copy-target]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var el = document.querySelector(btn.getAttribute("data-copy-target"));
        if (el && navigator.clipboard) { navigator.clipboard.writeText(el.textContent.trim()); btn.textContent = "Copied"; }
      });
    });
  });
})();
