// Strategy builder: add, remove and reorder legs without losing the rest of the form, and
// show only the fields a leg's choices use. The form stays a plain POST with indexed names
// (legs-0-lots ...): this script only renumbers them; the server validates everything.
(function () {
  "use strict";
  var form = document.querySelector("[data-strategy-builder]");
  if (!form) { return; }
  var list = form.querySelector("[data-legs]");
  var template = form.querySelector("[data-leg-template]");
  var addButton = form.querySelector("[data-add-leg]");
  var MAX_LEGS = 20;
  var NAME = /^legs-(\d+|__index__)-/;
  var ATTRS = ["name", "id", "for", "data-field-error"];

  function legs() { return Array.prototype.slice.call(list.querySelectorAll("[data-leg]")); }

  function renumber() {
    legs().forEach(function (leg, i) {
      var prefix = "legs-" + i + "-";
      leg.querySelectorAll("*").forEach(function (el) {
        ATTRS.forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value && NAME.test(value)) { el.setAttribute(attr, value.replace(NAME, prefix)); }
        });
      });
      var title = leg.querySelector("[data-leg-title]");
      if (title) { title.textContent = "Leg " + (i + 1); }
    });
    addButton.disabled = legs().length >= MAX_LEGS;
  }

  function value(leg, field) {
    var el = leg.querySelector('[name$="-' + field + '"]');
    return el ? el.value : "";
  }

  function toggle(leg) {
    var instrument = value(leg, "instrument");
    var method = value(leg, "strike_method");
    var order = value(leg, "order_type");
    leg.querySelectorAll("[data-when-instrument],[data-when-method],[data-when-order]").forEach(function (box) {
      var show = true;
      var want = box.getAttribute("data-when-instrument");
      if (want && want !== instrument) { show = false; }
      want = box.getAttribute("data-when-method");
      if (want && want.split(" ").indexOf(method) < 0) { show = false; }
      want = box.getAttribute("data-when-order");
      if (want && want !== order) { show = false; }
      box.hidden = !show;
    });
  }

  function addLeg() {
    if (legs().length >= MAX_LEGS) { return; }
    var fragment = template.content.cloneNode(true);
    list.appendChild(fragment);
    renumber();
    var added = legs()[legs().length - 1];
    toggle(added);
    var first = added.querySelector("select, input");
    if (first) { first.focus(); }
  }

  list.addEventListener("click", function (event) {
    var button = event.target.closest("[data-leg-action]");
    if (!button) { return; }
    var leg = button.closest("[data-leg]");
    var action = button.getAttribute("data-leg-action");
    if (action === "remove") {
      leg.remove();
    } else if (action === "up" && leg.previousElementSibling) {
      list.insertBefore(leg, leg.previousElementSibling);
    } else if (action === "down" && leg.nextElementSibling) {
      list.insertBefore(leg.nextElementSibling, leg);
    }
    renumber();
  });

  list.addEventListener("change", function (event) {
    var leg = event.target.closest("[data-leg]");
    if (leg) { toggle(leg); }
  });

  addButton.addEventListener("click", addLeg);
  // Renumber once more just before sending, whatever happened to the list.
  form.addEventListener("submit", renumber);
  legs().forEach(toggle);
  renumber();
}());
