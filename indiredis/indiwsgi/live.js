// indiredis web client: live values without reloading the page, and forms sent in the background.
(function () {
  "use strict";
  var main = document.getElementById("properties");
  if (!main) { return; }
  var api = main.getAttribute("data-api");
  var etag = null;
  var known = main.getAttribute("data-names");
  window.indiredisStates = [];  // property state changes seen, for whoever wants to know (tests do)

  function css(value) { return value.replace(/["\\]/g, "\\$&"); }

  function apply(state) {
    var names = Object.keys(state.properties).sort().join("\n");
    if (names !== known) {  // properties came or went: take the new layout, keep the page
      known = names;
      fetch(window.location.href, {credentials: "same-origin"}).then(function (r) { return r.text(); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("properties");
          if (fresh) { main.innerHTML = fresh.innerHTML; bindForms(); }
        });
      return;
    }
    Object.keys(state.properties).forEach(function (name) {
      var prop = state.properties[name];
      var light = main.querySelector('[data-light="' + css(name) + '"]');
      if (light && light.getAttribute("data-state") !== prop.state) {
        light.setAttribute("data-state", prop.state);
        light.title = prop.state;
        window.indiredisStates.push(name + ":" + prop.state);
      }
      Object.keys(prop.elements).forEach(function (element) {
        var cell = main.querySelector('[data-value="' + css(name) + '"][data-element="' + css(element) + '"]');
        var text = prop.elements[element];
        if (!cell || cell.textContent === text) { return; }
        cell.textContent = text;
        var blobs = cell.getAttribute("data-blob");  // a BLOB element: its link follows the newest file
        if (blobs !== null) { cell.setAttribute("href", text ? blobs + encodeURIComponent(text) : ""); }
        var form = cell.closest("form");  // switches: the choice follows the device unless the user is editing
        var box = form && !form.dirty && form.querySelector('input[name="switch"][value="' + css(element) + '"]');
        if (box && (text === "On" || text === "Off")) { box.checked = text === "On"; }
      });
    });
    var message = document.getElementById("message");
    if (message) { message.textContent = state.message; }
  }

  function poll() {
    var headers = etag ? {"If-None-Match": etag} : {};
    fetch(api, {headers: headers, credentials: "same-origin"}).then(function (r) {
      if (r.status === 200) { etag = r.headers.get("ETag"); return r.json().then(apply); }
    }).catch(function () {}).then(function () { window.setTimeout(poll, 300); });
  }

  function bindForms() {
    Array.prototype.forEach.call(main.querySelectorAll("form.set"), function (form) {
      var edited = function () { form.dirty = true; };
      form.addEventListener("input", edited);
      form.addEventListener("change", edited);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        form.dirty = false;
        var note = form.querySelector(".note");
        fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                            headers: {"X-Requested-With": "fetch"}})
          .then(function (r) { return r.text().then(function (t) { note.textContent = r.ok ? "sent" : t; }); });
      });
    });
  }
  bindForms();
  poll();
})();
