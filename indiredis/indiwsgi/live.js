// indiredis web client: live values, states and messages in place, forms sent in the background.
// Nothing the user is editing is ever replaced: an input follows the device only while untouched,
// and a property block whose layout changed is swapped only when nobody is editing it.
(function () {
  "use strict";
  var body = document.body;
  var root = body.getAttribute("data-root") || "";
  var csrfMeta = document.querySelector("meta[name=csrf]");
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var main = document.getElementById("properties");
  var nav = document.getElementById("devices");
  var list = document.getElementById("devicelist");
  var banner = document.getElementById("banner");
  var failingSince = null;
  var gone = false;  // the device of this page is no longer defined
  var bridgeProblems = [];
  window.indiredisStates = [];  // property state changes seen, for whoever wants to know (tests do)
  document.documentElement.classList.add("js");

  function css(value) { return value.replace(/["\\]/g, "\\$&"); }
  function byData(scope, attribute, value) {
    return scope.querySelector("[" + attribute + '="' + css(value) + '"]');
  }

  // -- truth about the data: the banner --------------------------------------------------------
  function showBanner() {
    var problems = bridgeProblems.slice();
    if (gone) { problems.unshift("This device is no longer defined (deleted by its driver, or the driver stopped)."); }
    if (failingSince !== null && Date.now() - failingSince > 2500) {
      problems.unshift("The web server cannot be reached: the values shown are stale.");
    }
    banner.hidden = problems.length === 0;
    banner.textContent = problems.join(" ");
    body.classList.toggle("stale", problems.length > 0);
  }
  function noteStatus(status) {
    bridgeProblems = status && !status.ok ? status.problems : [];
    showBanner();
  }
  window.setInterval(showBanner, 1000);

  function getJSON(url, etag) {
    var headers = etag ? {"If-None-Match": etag} : {};
    return fetch(url, {headers: headers, credentials: "same-origin", cache: "no-store"}).then(function (r) {
      if (r.status === 401) { window.location.href = body.getAttribute("data-login"); throw new Error("login"); }
      if (r.status === 304) { failingSince = null; return null; }
      if (r.status === 404 && url === (main && main.getAttribute("data-api"))) {
        failingSince = null; gone = true; return null;
      }
      if (!r.ok) { throw new Error(r.status); }
      failingSince = null;
      if (url === (main && main.getAttribute("data-api"))) { gone = false; }
      return r.json().then(function (data) { return {etag: r.headers.get("ETag"), data: data}; });
    }).catch(function (error) {
      if (failingSince === null) { failingSince = Date.now(); }
      throw error;
    });
  }

  function poller(url, period, apply) {  // polls until its .on is set false
    var etag = null, running = {on: true};
    function poll() {
      if (!running.on) { return; }
      getJSON(url, etag).then(function (answer) {
        if (answer && running.on) { etag = answer.etag; apply(answer.data); }
      }).catch(function () {}).then(function () {
        showBanner();
        if (running.on) { window.setTimeout(poll, period); }
      });
    }
    poll();
    return running;
  }

  // -- the device list and the device bar ------------------------------------------------------
  function deviceHref(name) { return root + "/device/" + encodeURIComponent(name); }
  function connText(device) {
    return device.connected === null ? "" : (device.connected ? "connected" : "disconnected");
  }
  function syncDeviceLinks(container, devices, make) {
    var seen = {};
    devices.forEach(function (device) {
      seen[device.name] = true;
      var item = byData(container, "data-device", device.name);
      if (!item) { item = make(device); container.appendChild(item); }
      var light = item.querySelector(".light");
      light.setAttribute("data-state", device.connected ? device.state : "Idle");
      item.querySelector(".conn").textContent = connText(device);
    });
    Array.prototype.forEach.call(container.querySelectorAll("[data-device]"), function (item) {
      if (!seen[item.getAttribute("data-device")]) { item.remove(); }
    });
  }
  function deviceLink(device) {
    var a = document.createElement("a");
    a.href = deviceHref(device.name);
    a.setAttribute("data-device", device.name);
    a.innerHTML = "<span class='light'></span> <span></span> <small class='conn'></small>";
    a.children[1].textContent = device.name;
    return a;
  }
  function deviceItem(device) {
    var li = document.createElement("li");
    li.setAttribute("data-device", device.name);
    li.innerHTML = "<a><span class='light'></span> <span></span></a> <small class='conn'></small>";
    li.firstChild.href = deviceHref(device.name);
    li.firstChild.children[1].textContent = device.name;
    return li;
  }
  function applyDevices(state) {
    if (nav) { syncDeviceLinks(nav, state.devices, deviceLink); }
    if (list) {
      syncDeviceLinks(list, state.devices, deviceItem);
      var none = document.getElementById("nodevices");
      if (none) { none.hidden = state.devices.length > 0; }
      var message = document.getElementById("message");
      if (message) { message.textContent = state.message; }
    }
    if (!main) { noteStatus(state.status); }
  }
  // -- every change as it happens: the page's event stream (polling when refused one) ------------
  var lastStatus = null;
  var deviceChange = null;  // set below on a device page
  window.indiredisEvents = 0;  // events received, for whoever wants to know (tests do)
  window.indiredisLog = [];  // the newest events received and what the page did (tests dump it on failure)
  function note(what) {
    window.indiredisLog.push(new Date().toISOString().slice(11, 23) + " " + what);
    if (window.indiredisLog.length > 300) { window.indiredisLog.shift(); }
  }
  var polling = [];  // the pollers running while the page has no stream
  var retryIn = 30000;  // ms before the stream is tried again (doubled up to 5 min while refused)
  var source = null;
  function fallback() {  // poll meanwhile, and try the stream again later
    if (!polling.length) {
      if (nav || list) { polling.push(poller(root + "/api/devices", main ? 2000 : 700, applyDevices)); }
      if (main) { polling.push(poller(main.getAttribute("data-api"), 500, apply)); }
    }
    if (window.EventSource) {
      window.setTimeout(live, retryIn);
      retryIn = Math.min(retryIn * 2, 300000);
    }
  }
  function live() {
    if (!window.EventSource) { fallback(); return; }
    var url = root + "/api/stream" + (main ? "/" + encodeURIComponent(main.getAttribute("data-device")) : "");
    source = new EventSource(url, {withCredentials: true});
    source.onopen = function () {
      note("stream open");
      failingSince = null;
      retryIn = 30000;
      polling.forEach(function (running) { running.on = false; });  // the stream sends everything
      polling = [];
      showBanner();
    };
    source.onmessage = function (event) {
      failingSince = null;
      window.indiredisEvents += 1;
      note("event " + event.lastEventId + " " + event.data.slice(0, 400));
      var change = JSON.parse(event.data);
      if (change.list) { change.devices = change.list.devices; change.message = change.list.message; }
      if (change.status) { lastStatus = change.status; noteStatus(lastStatus); }
      if (change.devices) { applyDevices({devices: change.devices, message: change.message, status: lastStatus}); }
      if (deviceChange) { deviceChange(change); }
    };
    source.onerror = function () {
      note("stream error, state " + this.readyState);
      if (this.readyState === EventSource.CLOSED) { fallback(); return; }  // refused: poll instead
      if (failingSince === null) { failingSince = Date.now(); }
      showBanner();
    };
  }
  // a page left (or kept in the back-forward cache) frees its connection: browsers allow only six
  window.addEventListener("pagehide", function () { if (source) { source.close(); } });
  window.addEventListener("pageshow", function (event) { if (event.persisted) { window.location.reload(); } });
  live();

  if (!main) { return; }

  // -- tabs: one group shown at a time, remembered per device -----------------------------------
  var device = main.getAttribute("data-device");
  var tabKey = "indiredis-tab:" + device;
  function tabs() { return main.querySelector(".tabs"); }
  function selectGroup(group) {
    var sections = main.querySelectorAll(".group");
    if (!sections.length) { return; }
    var chosen = (group !== null && byData(main.querySelector(".groups"), "data-group", group)) || sections[0];
    Array.prototype.forEach.call(sections, function (s) { s.classList.toggle("active", s === chosen); });
    Array.prototype.forEach.call(tabs().querySelectorAll("a"), function (a) {
      a.setAttribute("aria-selected", String(a.getAttribute("data-group") === chosen.getAttribute("data-group")));
    });
  }
  function currentGroup() {
    var active = main.querySelector(".group.active");
    return active ? active.getAttribute("data-group") : null;
  }
  tabs().addEventListener("click", function (event) {
    var a = event.target.closest("a[data-group]");
    if (!a) { return; }
    event.preventDefault();
    selectGroup(a.getAttribute("data-group"));
    try { window.sessionStorage.setItem(tabKey, a.getAttribute("data-group")); } catch (e) { /* ignore */ }
  });
  var remembered = null;
  try { remembered = window.sessionStorage.getItem(tabKey); } catch (e) { /* ignore */ }
  selectGroup(remembered);

  // -- numbers: decimal or sexagesimal, checked against min/max in the browser ------------------
  function parseNumber(text) {
    text = text.trim();
    if (!text) { return NaN; }
    if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) { return Number(text); }
    var m = /^([-+])?\s*(\d+(?:\.\d*)?)(?:[:\s]+(\d+(?:\.\d*)?))?(?:[:\s]+(\d+(?:\.\d*)?))?$/.exec(text);
    if (!m) { return NaN; }
    var value = Number(m[2]) + Number(m[3] || 0) / 60 + Number(m[4] || 0) / 3600;
    return m[1] === "-" ? -value : value;
  }
  function checkNumber(input) {
    var value = parseNumber(input.value);
    var problem = "";
    if (input.value.trim() === "") { problem = ""; }
    else if (isNaN(value)) { problem = "not a number: decimal, or sexagesimal such as 12:30:15"; }
    else if (input.hasAttribute("data-min")) {
      var low = Number(input.getAttribute("data-min")), high = Number(input.getAttribute("data-max"));
      if (value < low || value > high) { problem = "outside " + low + " … " + high; }
    }
    input.setCustomValidity(problem);
    input.classList.toggle("bad", problem !== "");
    return problem;
  }

  function edited(event) {  // typed into, or changed (cleared, pasted, autofilled): the user's now
    var input = event.target;
    if (!input.matches("input[name]")) { return; }
    input.setAttribute("data-dirty", "1");
    if (input.getAttribute("data-kind") === "number") { checkNumber(input); }
  }
  main.addEventListener("input", edited);
  main.addEventListener("change", edited);

  // -- targets: a value the user set stays in its field (the current value is shown beside it) ----
  function targetKey(input) {  // targets are remembered by the browser, across reloads
    var block = input.closest("[data-prop]");
    return "indiredis-target:" + device + "|" + (block ? block.getAttribute("data-prop") : "") + "|" + input.name;
  }
  function setTarget(input, value) {
    var edit = input.closest(".edit");
    if (value.trim() === "") {  // an emptied field follows the device again
      input.removeAttribute("data-target");
      if (edit) { edit.classList.remove("target"); }
      try { window.localStorage.removeItem(targetKey(input)); } catch (e) { /* ignore */ }
      return;
    }
    input.setAttribute("data-target", value);
    input.value = value;
    if (edit) { edit.classList.add("target"); }
    try { window.localStorage.setItem(targetKey(input), value); } catch (e) { /* ignore */ }
  }
  function storedTarget(input) {
    try { return window.localStorage.getItem(targetKey(input)); } catch (e) { return null; }
  }
  function keepTargets(old, fresh) {  // a block swapped for a new layout keeps the user's targets
    Array.prototype.forEach.call(old.querySelectorAll("input[data-target]"), function (input) {
      var twin = fresh.querySelector('input[name="' + css(input.name) + '"]');
      if (twin) { setTarget(twin, input.getAttribute("data-target")); }
    });
  }

  // -- action buttons that press another property's switch (Abort beside Expose) ----------------
  main.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-post]");
    if (!button) { return; }
    var data = new FormData();
    data.set("csrf", csrf);
    data.set("press", button.getAttribute("data-press"));
    var note = button.closest("form") && button.closest("form").querySelector(".note");
    fetch(button.getAttribute("data-post"), {method: "POST", body: data, credentials: "same-origin",
                                             headers: {"X-Requested-With": "fetch", "X-CSRF-Token": csrf}})
      .then(function (r) { return r.text().then(function (text) {
        if (note) { note.className = r.ok ? "note" : "note error"; note.textContent = r.ok ? "abort sent" : text; }
      }); })
      .catch(function () { if (note) { note.className = "note error"; note.textContent = "not sent"; } });
  });

  // -- sending: complete vectors are made by the server from what was typed ----------------------
  main.addEventListener("submit", function (event) {
    var form = event.target;
    event.preventDefault();
    var asking = event.submitter && event.submitter.getAttribute("data-confirm");
    if (asking && !window.confirm(asking)) { return; }
    var note = form.querySelector(".note");
    var problems = [];
    Array.prototype.forEach.call(form.querySelectorAll("input[data-kind=number][data-dirty]"), function (input) {
      var problem = checkNumber(input);
      if (problem) { problems.push(input.name + ": " + problem); }
    });
    if (problems.length) { form.reportValidity(); note.textContent = problems.join("; "); note.className = "note error"; return; }
    var data = new FormData(form);
    Array.prototype.forEach.call(form.querySelectorAll("input[name]:not([type=file]):not([type=checkbox]):not([type=hidden])"),
      function (input) {  // typed now, or the target kept from the last set (a repeat sends it again)
        if (!input.hasAttribute("data-dirty") && !input.hasAttribute("data-target")) { data.delete(input.name); }
      });
    var pressed = event.submitter;
    if (pressed && pressed.name === "press") { data.set("press", pressed.value); }
    note.className = "note";
    note.textContent = "sending…";
    form.setAttribute("data-pending", form.getAttribute("data-state") || "");
    fetch(form.action, {method: "POST", body: data, credentials: "same-origin",
                        headers: {"X-Requested-With": "fetch", "X-CSRF-Token": csrf}})
      .then(function (r) {
        if (r.status === 401) { window.location.href = body.getAttribute("data-login"); return; }
        return r.text().then(function (text) {
          if (!r.ok) { form.removeAttribute("data-pending"); note.className = "note error"; note.textContent = text; return; }
          note.textContent = "sent, waiting for the device…";
          Array.prototype.forEach.call(form.querySelectorAll("input[data-dirty]"), function (input) {
            input.removeAttribute("data-dirty");
            if (input.type !== "file" && input.type !== "checkbox") { setTarget(input, input.value); }
          });
        });
      })
      .catch(function () { note.className = "note error"; note.textContent = "not sent: the web server cannot be reached"; });
  });

  // -- files of BLOB elements, previews --------------------------------------------------------
  var previewable = /\.(fits?|fts|fits\.gz|jpe?g|png)$/i;
  function blobUrl(kind, file) { return root + "/" + kind + "/" + encodeURIComponent(file); }
  function showPreview(figure, file, label) {
    if (!figure || !file || !previewable.test(file)) { return false; }
    var open = figure.querySelector(".open-viewer");
    if (open) { open.setAttribute("data-file", file); }
    var img = figure.querySelector("img");
    var src = blobUrl("preview", file);
    if (img.getAttribute("src") !== src) { img.setAttribute("src", src); }
    figure.querySelector("figcaption").textContent = label;
    figure.hidden = false;
    return true;
  }
  function showFiles(details, files) {
    if (!details) { return; }
    var ul = details.querySelector("ul");
    var key = files.join("\n");
    if (ul.getAttribute("data-key") === key) { return; }
    ul.setAttribute("data-key", key);
    ul.textContent = "";
    details.hidden = files.length === 0;
    details.querySelector("summary").textContent = "Files (" + files.length + ")";
    files.forEach(function (file) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = blobUrl("blobs", file);
      a.setAttribute("download", "");
      a.textContent = file;
      li.appendChild(a);
      if (main.getAttribute("data-operator") === "1") {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "delete";
        button.textContent = "Delete";
        button.addEventListener("click", function () {
          if (!window.confirm("Delete " + file + "?")) { return; }
          var data = new FormData();
          data.set("csrf", csrf);
          fetch(blobUrl("delete", file), {method: "POST", body: data, credentials: "same-origin",
                                          headers: {"X-Requested-With": "fetch", "X-CSRF-Token": csrf}})
            .then(function (r) { if (r.ok) { li.remove(); } });
        });
        li.appendChild(button);
      }
      ul.appendChild(li);
    });
  }

  // -- applying a device state -------------------------------------------------------------------
  function editing(block) {
    return block.contains(document.activeElement) || block.querySelector("input[data-dirty]") !== null;
  }
  function shortTime(stamp) { return stamp ? stamp.replace(/^.*T/, "").replace(/\.\d+$/, "") + " " : ""; }

  function showProgress(progress, block, prop) {  // an exposure's share done, from its countdown
    var input = block.querySelector("input[data-kind=number]");
    var left = parseNumber(prop.elements[input ? input.name : ""] || "");
    var total = input ? parseNumber(input.getAttribute("data-target") || "") : NaN;
    if (prop.state === "Busy" && (isNaN(total) || total < left)) {
      total = Number(progress.getAttribute("data-total")) || left;
    }
    if (prop.state === "Busy" && total > 0 && !isNaN(left)) {
      progress.setAttribute("data-total", String(total));
      progress.value = Math.max(0, Math.min(1, 1 - left / total));
      progress.hidden = false;
    } else {
      progress.removeAttribute("data-total");
      progress.value = prop.state === "Ok" ? 1 : 0;
      progress.hidden = prop.state !== "Ok";
    }
  }

  function applyValues(block, prop, latest) {
    var name = prop.name;
    if (block.getAttribute("data-state") !== prop.state) {
      block.setAttribute("data-state", prop.state);
      window.indiredisStates.push(name + ":" + prop.state);
    }
    var light = block.querySelector("[data-light]");
    if (light) { light.setAttribute("data-state", prop.state); }
    var stateText = block.querySelector("[data-statetext]");
    if (stateText) { stateText.textContent = prop.state; }
    var msg = block.querySelector("[data-msg]");
    var message = prop.message ? shortTime(prop.timestamp) + prop.message : "";
    if (msg && msg.textContent !== message) { msg.textContent = message; }
    var pending = block.getAttribute("data-pending");
    var seen = prop.timestamp + "|" + prop.state + "|" + prop.message;
    if (pending !== null && block.getAttribute("data-seen") !== seen) {
      var note = block.querySelector(".note");
      if (prop.state === "Busy") { note.textContent = "busy…"; }
      else {
        block.removeAttribute("data-pending");
        note.className = prop.state === "Alert" ? "note error" : "note";
        note.textContent = prop.state === "Alert" ? "failed" + (prop.message ? ": " + prop.message : "") : "";
      }
    }
    block.setAttribute("data-seen", seen);
    var progress = block.querySelector("progress.progress");
    if (progress) { showProgress(progress, block, prop); }
    Object.keys(prop.elements).forEach(function (element) {
      var text = prop.elements[element];
      Array.prototype.forEach.call(block.querySelectorAll('[data-element="' + css(element) + '"]'), function (node) {
        if (node.classList.contains("switch")) { node.setAttribute("aria-pressed", String(text === "On")); }
        else if (node.classList.contains("light")) {
          node.setAttribute("data-state", text);
          var label = byData(block, "data-lighttext", element);
          if (label) { label.textContent = text; }
        } else if (node.textContent !== text) {
          node.textContent = text;
          var blobs = node.getAttribute("data-blob");
          if (blobs) { node.setAttribute("href", text ? blobs + encodeURIComponent(text) : ""); }
        }
      });
      var input = block.querySelector('input[name="' + css(element) + '"]:not([type=file])');
      if (input && !input.hasAttribute("data-dirty") && !input.hasAttribute("data-target") && storedTarget(input)) {
        setTarget(input, storedTarget(input));
      }
      if (input && !input.hasAttribute("data-dirty") && !input.hasAttribute("data-target") &&
          document.activeElement !== input && input.value !== text) {
        input.value = text;
      }
      if (prop.files && prop.files[element]) {
        var files = prop.files[element];
        showFiles(byData(block, "data-files", element), files);
        if (files.length && showPreview(byData(block, "data-preview", element), files[0], files[0])) {
          if (!latest.file || prop.timestamp > latest.timestamp) {
            latest.file = files[0];
            latest.timestamp = prop.timestamp;
          }
        }
      }
    });
  }

  function section(group) {
    var groups = main.querySelector(".groups");
    var found = byData(groups, "data-group", group);
    if (found) { return found; }
    var index = main.querySelectorAll(".group").length;
    while (document.getElementById("group-" + index)) { index += 1; }
    found = document.createElement("section");
    found.className = "group";
    found.id = "group-" + index;
    found.setAttribute("data-group", group);
    var h2 = document.createElement("h2");
    h2.textContent = group;
    found.appendChild(h2);
    groups.appendChild(found);
    var tab = document.createElement("a");
    tab.href = "#" + found.id;
    tab.setAttribute("role", "tab");
    tab.setAttribute("data-group", group);
    tab.textContent = group;
    tabs().appendChild(tab);
    return found;
  }

  function orderGroups(state) {  // tabs and sections in the order the driver first used the groups
    var order = [];
    state.properties.forEach(function (p) { if (order.indexOf(p.group) < 0) { order.push(p.group); } });
    var groups = main.querySelector(".groups");
    Array.prototype.forEach.call(main.querySelectorAll(".group"), function (s) {
      if (!s.querySelector(".prop") && order.indexOf(s.getAttribute("data-group")) < 0) {
        var tab = byData(tabs(), "data-group", s.getAttribute("data-group"));
        if (tab) { tab.remove(); }
        s.remove();
      }
    });
    var sections = [];
    var links = [];
    order.forEach(function (group) {
      var s = byData(groups, "data-group", group);
      var tab = byData(tabs(), "data-group", group);
      if (s) { sections.push(s); }
      if (tab) { links.push(tab); }
    });
    keepOrder(groups, sections);
    keepOrder(tabs(), links);
    if (!main.querySelector(".group.active")) { selectGroup(currentGroup()); }
  }
  function keepOrder(parent, nodes) {  // nodes last in parent, in this order; moves only those out of place
    var next = null;  // (a node moved loses the focus within it: keys typed then were lost, every change)
    for (var i = nodes.length - 1; i >= 0; i -= 1) {
      if (nodes[i].nextElementSibling !== next) { parent.insertBefore(nodes[i], next); }
      next = nodes[i];
    }
  }

  var blocksWanted = false;
  var blocksAsked = 0;  // fetches of blocks started (the newest one's end clears blocksWanted)
  var shown = null;  // the state shown last (streamed or polled)
  function placeBlock(state, index, fresh) {
    var prop = state.properties[index];
    var old = byData(main, "data-prop", prop.name);
    if (old) { keepTargets(old, fresh); }
    if (old && old.parentNode.getAttribute("data-group") === prop.group) { old.replaceWith(fresh); return; }
    if (old) { old.remove(); }
    var target = section(prop.group);
    for (var next = index + 1; next < state.properties.length; next += 1) {
      var follower = byData(target, "data-prop", state.properties[next].name);
      if (follower) { target.insertBefore(fresh, follower); return; }
    }
    target.appendChild(fresh);
  }
  function fetchBlocks(wanted, raw) {
    blocksWanted = true;
    var asked = ++blocksAsked;
    note("blocks wanted: " + wanted.join(","));
    getJSON(main.getAttribute("data-blocks")).then(function (answer) {
      var html = answer.data;
      // the state shown now, not the one the blocks were asked for: a whole state of the device (or a
      // poll) that came meanwhile is newer, and applying the older one would undo its changes
      var now = shown || raw;
      var state = {properties: now.order.map(function (name) { return now.properties[name]; })};
      var placed = 0;
      note("blocks received; applying the state shown now");
      state.properties.forEach(function (prop, index) {
        if (wanted.indexOf(prop.name) < 0 || !html[prop.name]) { return; }
        var old = byData(main, "data-prop", prop.name);
        if (old && editing(old)) { return; }  // later: never under the user's fingers
        var holder = document.createElement("div");
        holder.innerHTML = html[prop.name];
        placeBlock(state, index, holder.firstElementChild);
        placed += 1;
      });
      orderGroups(state);
      blocksWanted = placed === 0;  // blocks still missing are asked for now (after a vain answer: later)
      apply(now);
    }).catch(function () {}).then(function () { if (asked === blocksAsked) { blocksWanted = false; } });
  }

  var lastLog = null;
  function applyMessages(messages) {
    var key = JSON.stringify(messages[0] || null) + messages.length;
    if (key === lastLog) { return; }
    lastLog = key;
    var ol = document.getElementById("messages");
    ol.textContent = "";
    messages.forEach(function (entry) {
      var li = document.createElement("li");
      li.className = entry[2] === "bridge" ? "bridge" : "driver";
      var time = document.createElement("time");
      time.textContent = entry[0];
      li.appendChild(time);
      li.appendChild(document.createTextNode(" " + entry[1]));
      ol.appendChild(li);
    });
  }

  function apply(answer) {
    var state = {status: answer.status, messages: answer.messages,
                 properties: answer.order.map(function (name) { return answer.properties[name]; })};
    if (state.status !== undefined) { noteStatus(state.status); }
    var names = {};
    var wanted = [];
    var latest = {file: null, timestamp: ""};
    state.properties.forEach(function (prop) {
      names[prop.name] = true;
      var block = byData(main, "data-prop", prop.name);
      if (!block || block.getAttribute("data-layout") !== prop.layout) {
        if (!block || !editing(block)) { wanted.push(prop.name); }
      }
      if (block) { applyValues(block, prop, latest); }
    });
    Array.prototype.forEach.call(main.querySelectorAll(".prop[data-prop]"), function (block) {
      if (!names[block.getAttribute("data-prop")]) { block.remove(); }
    });
    if (wanted.length && !blocksWanted) { fetchBlocks(wanted, answer); }
    else { orderGroups(state); }
    applyMessages(state.messages);
    shown = answer;
    quickGraphs();
    quickActions();
    var aside = main.querySelector(".latest");
    if (latest.file) { aside.hidden = !showPreview(aside.querySelector(".preview"), latest.file, latest.file); }
  }

  // -- the message log: the bridge's own notes can be hidden (remembered per browser) ------------
  var hideBridge = document.getElementById("hidebridge");
  var logSection = main.querySelector(".log");
  function bridgeNotes() { logSection.classList.toggle("hidebridge", hideBridge.checked); }
  try { hideBridge.checked = window.localStorage.getItem("indiredis-hidebridge") === "1"; } catch (e) { /* ignore */ }
  bridgeNotes();
  hideBridge.addEventListener("change", function () {
    bridgeNotes();
    try { window.localStorage.setItem("indiredis-hidebridge", hideBridge.checked ? "1" : "0"); } catch (e) { /* ignore */ }
  });

  // -- history graphs (Debian's libjs-dygraphs, loaded on first use) ------------------------------
  var DEFAULT_GRAPHS = [["CCD_TEMPERATURE", "CCD temperature"], ["ABS_FOCUS_POSITION", "Focuser position"],
                        ["EQUATORIAL_EOD_COORD", "Mount RA/DEC"]];
  var graphs = main.querySelector("#graphs");
  var historyBox = graphs.querySelector(".history");
  var shownGraph = null;
  var graphTimer = null;
  window.indiredisGraphs = [];  // the Dygraph objects shown (tests look at them)
  var dygraphLoading = null;
  function loadDygraph() {
    if (window.Dygraph) { return Promise.resolve(); }
    if (!dygraphLoading) {
      dygraphLoading = new Promise(function (resolve, reject) {
        var link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = root + "/static/dygraph.css";
        document.head.appendChild(link);
        var script = document.createElement("script");
        script.src = root + "/static/dygraph.js";
        script.onload = resolve;
        script.onerror = function () { dygraphLoading = null; reject(new Error("no dygraph")); };
        document.head.appendChild(script);
      });
    }
    return dygraphLoading;
  }
  function themeColor(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function quickGraphs() {
    var quick = graphs.querySelector(".quick");
    DEFAULT_GRAPHS.forEach(function (entry) {
      var present = shown && shown.properties[entry[0]];
      var button = byData(quick, "data-graph", entry[0]);
      if (present && !button) {
        button = document.createElement("button");
        button.type = "button";
        button.className = "graph";
        button.setAttribute("data-graph", entry[0]);
        button.textContent = entry[1];
        quick.appendChild(button);
      } else if (!present && button) { button.remove(); }
    });
  }
  function drawGraph() {
    var name = shownGraph;
    var block = byData(main, "data-prop", name);
    var outputs = block ? block.querySelectorAll("output[data-element]") : [];
    var hours = historyBox.querySelector(".hours").value;
    var note = historyBox.querySelector(".graphnote");
    var plots = historyBox.querySelector(".plots");
    var elements = Array.prototype.map.call(outputs, function (o) {
      return [o.getAttribute("data-element"), o.closest(".el").querySelector(".name").textContent];
    });
    loadDygraph().then(function () {
      return Promise.all(elements.map(function (element) {
        var url = root + "/api/history/" + encodeURIComponent(device) + "/" + encodeURIComponent(name) + "/" +
          encodeURIComponent(element[0]) + "?hours=" + hours;
        return fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (r) { return r.json(); });
      }));
    }).then(function (answers) {
      if (shownGraph !== name) { return; }
      if (plots.getAttribute("data-for") !== name + "|" + hours + "|" + themeColor("--fg")) {
        plots.textContent = "";
        window.indiredisGraphs = [];
        plots.setAttribute("data-for", name + "|" + hours + "|" + themeColor("--fg"));
      }
      var count = 0;
      answers.forEach(function (answer, index) {
        count += answer.count;
        var rows = answer.points.map(function (p) { return [new Date(p[0]), [p[1], p[2], p[3]]]; });
        var graph = window.indiredisGraphs[index];
        if (!rows.length) { return; }
        if (graph) { graph.updateOptions({file: rows}); return; }
        var div = document.createElement("div");
        div.className = "plot";
        plots.appendChild(div);
        window.indiredisGraphs[index] = new window.Dygraph(div, rows, {
          customBars: true, labels: ["time", elements[index][1]], title: elements[index][1],
          colors: [themeColor("--accent")], axisLineColor: themeColor("--muted"), gridLineColor: themeColor("--line"),
          height: 170, legend: "follow", labelsUTC: false, strokeWidth: 1.5, drawPoints: rows.length < 80,
          axisLabelFontSize: 12, axes: {x: {axisLabelWidth: 64, pixelsPerLabel: 80}, y: {axisLabelWidth: 56}}
        });
      });
      note.className = "note graphnote";
      note.textContent = count ? count + " values kept over the last " + hours + " h (min, mean and max shown)" :
        "No history yet: values are kept from now on.";
    }).catch(function (error) {
      note.className = "note graphnote error";
      note.textContent = error && error.message === "no dygraph" ?
        "The charting library is missing: install libjs-dygraphs." : "The history cannot be read.";
    });
  }
  function openGraph(name) {
    shownGraph = name;
    var prop = current && current.properties[name];
    var block = byData(main, "data-prop", name);
    var label = block ? block.querySelector(".head strong").textContent : name;
    historyBox.querySelector(".what").textContent = label || (prop && prop.name) || name;
    historyBox.hidden = false;
    historyBox.querySelector(".plots").removeAttribute("data-for");
    drawGraph();
    window.clearInterval(graphTimer);
    graphTimer = window.setInterval(drawGraph, 5000);
    graphs.scrollIntoView({block: "nearest"});
  }
  main.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-graph]");
    if (button) { openGraph(button.getAttribute("data-graph")); }
  });
  historyBox.querySelector(".close").addEventListener("click", function () {
    shownGraph = null;
    historyBox.hidden = true;
    window.clearInterval(graphTimer);
  });
  historyBox.querySelector(".hours").addEventListener("change", drawGraph);
  document.getElementById("theme").addEventListener("click", function () { if (shownGraph) { drawGraph(); } });

  // -- the image viewer: full size, zoom and pan, stretch, histogram, statistics, FITS header ------
  var viewer = document.getElementById("viewer");
  var stage = viewer.querySelector(".stage");
  var vimg = viewer.querySelector(".vimg");
  var vfile = null, vinfo = null, vstate = {cx: 0, cy: 0, zoom: 1}, dragging = null, vtoken = 0;
  function vfield(name) { return viewer.querySelector("." + name); }
  function digits(value) { return Math.abs(value) >= 1e6 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(4) : String(Number(value.toPrecision(6))); }
  function fitZoom() {
    return Math.min(stage.clientWidth / vinfo.width, stage.clientHeight / vinfo.height);
  }
  function drawView() {
    if (!vinfo) { return; }
    var z = vstate.zoom, sw = stage.clientWidth, sh = stage.clientHeight;
    var x0 = Math.max(0, Math.floor(vstate.cx - sw / (2 * z))), x1 = Math.min(vinfo.width, Math.ceil(vstate.cx + sw / (2 * z)));
    var y0 = Math.max(0, Math.floor(vstate.cy - sh / (2 * z))), y1 = Math.min(vinfo.height, Math.ceil(vstate.cy + sh / (2 * z)));
    if (x1 <= x0 || y1 <= y0) { return; }
    var out = Math.ceil(Math.max((x1 - x0) * z, (y1 - y0) * z));
    var query = "x=" + x0 + "&y=" + y0 + "&w=" + (x1 - x0) + "&h=" + (y1 - y0) + "&out=" + Math.max(16, out) +
      "&stretch=" + vfield("stretch").value;
    ["black", "white"].forEach(function (level) {
      var value = parseNumber(vfield(level).value);
      if (!isNaN(value)) { query += "&" + level + "=" + value; }
    });
    if (document.documentElement.getAttribute("data-theme") === "red") { query += "&tint=red"; }
    var src = blobUrl("view", vfile) + "?" + query;
    var token = ++vtoken;
    var next = new Image();
    next.onload = function () {
      if (token !== vtoken) { return; }
      vimg.src = src;
      vimg.style.width = (x1 - x0) * z + "px";
      vimg.style.height = (y1 - y0) * z + "px";
      vimg.style.left = (x0 - (vstate.cx - sw / (2 * z))) * z + "px";
      vimg.style.top = ((vstate.cy + sh / (2 * z)) - y1) * z + "px";
      vimg.style.transform = "";
      viewer.setAttribute("data-loaded", String(token));
    };
    next.src = src;
    drawHistogram();
  }
  function drawHistogram() {
    var canvas = vfield("hist"), context = canvas.getContext("2d"), hist = vinfo.histogram;
    var peak = Math.max.apply(null, hist.counts.map(function (c) { return Math.log(1 + c); })) || 1;
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.fillStyle = themeColor("--accent");
    hist.counts.forEach(function (c, i) {
      var h = Math.log(1 + c) / peak * canvas.height * 0.92;  // the tallest bar below the top edge
      context.fillRect(i * canvas.width / hist.counts.length, canvas.height - h, canvas.width / hist.counts.length, h);
    });
    context.fillStyle = themeColor("--fg");
    ["black", "white"].forEach(function (level) {
      var value = parseNumber(vfield(level).value);
      if (isNaN(value)) { return; }
      var x = (value - hist.low) / ((hist.high - hist.low) || 1) * canvas.width;
      context.fillRect(Math.max(0, Math.min(canvas.width - 2, x)), 0, 2, canvas.height);
    });
  }
  function autoLevels() {
    vfield("black").value = digits(vinfo.levels.black);
    vfield("white").value = digits(vinfo.levels.white);
  }
  function openViewer(file) {
    vfile = file;
    vinfo = null;
    vfield("vname").textContent = file;
    vfield("vnote").textContent = "reading…";
    vimg.removeAttribute("src");
    if (!viewer.open) { viewer.showModal(); }
    fetch(blobUrl("api/image", file), {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { return r.text().then(function (text) { throw new Error(text); }); }
      return r.json();
    }).then(function (info) {
      if (vfile !== file) { return; }
      vinfo = info;
      var s = info.stats;
      var table = vfield("stats");
      table.textContent = "";
      [["Size", info.width + " × " + info.height], ["Min", digits(s.min)], ["Max", digits(s.max)],
       ["Mean", digits(s.mean)], ["Median", digits(s.median)], ["Std dev", digits(s.std)]].forEach(function (row) {
        var tr = table.insertRow();
        tr.insertCell().textContent = row[0];
        tr.insertCell().textContent = row[1];
      });
      vfield("vnote").textContent = s.sampled < s.pixels ? "median and histogram from " + s.sampled + " sampled pixels" : "";
      var header = viewer.querySelector(".fitsheader");
      header.hidden = !info.header.length;
      header.querySelector("pre").textContent = info.header.join("\n");
      autoLevels();
      vstate = {cx: info.width / 2, cy: info.height / 2, zoom: fitZoom()};
      drawView();
    }).catch(function (error) { vfield("vnote").textContent = "cannot show it: " + error.message; });
  }
  function zoomBy(factor) {
    if (!vinfo) { return; }
    vstate.zoom = Math.max(fitZoom() / 4, Math.min(16, vstate.zoom * factor));
    drawView();
  }
  main.addEventListener("click", function (event) {
    var open = event.target.closest(".open-viewer");
    if (open && open.getAttribute("data-file")) { openViewer(open.getAttribute("data-file")); }
  });
  vfield("vclose").addEventListener("click", function () { viewer.close(); });
  vfield("zin").addEventListener("click", function () { zoomBy(2); });
  vfield("zout").addEventListener("click", function () { zoomBy(0.5); });
  vfield("fit").addEventListener("click", function () {
    if (vinfo) { vstate = {cx: vinfo.width / 2, cy: vinfo.height / 2, zoom: fitZoom()}; drawView(); }
  });
  vfield("one").addEventListener("click", function () { if (vinfo) { vstate.zoom = 1; drawView(); } });
  vfield("auto").addEventListener("click", function () { if (vinfo) { autoLevels(); drawView(); } });
  vfield("stretch").addEventListener("change", drawView);
  ["black", "white"].forEach(function (level) { vfield(level).addEventListener("change", drawView); });
  stage.addEventListener("wheel", function (event) { event.preventDefault(); zoomBy(event.deltaY < 0 ? 1.25 : 0.8); },
                         {passive: false});
  stage.addEventListener("pointerdown", function (event) {
    dragging = {x: event.clientX, y: event.clientY};
    stage.setPointerCapture(event.pointerId);
  });
  stage.addEventListener("pointermove", function (event) {
    if (dragging) { vimg.style.transform = "translate(" + (event.clientX - dragging.x) + "px," + (event.clientY - dragging.y) + "px)"; }
  });
  stage.addEventListener("pointerup", function (event) {
    if (!dragging || !vinfo) { dragging = null; return; }
    vstate.cx -= (event.clientX - dragging.x) / vstate.zoom;
    vstate.cy += (event.clientY - dragging.y) / vstate.zoom;
    dragging = null;
    drawView();
  });
  document.getElementById("theme").addEventListener("click", function () { if (vinfo) { drawView(); } });

  // -- quick actions at hand (at the top on a phone): they press the property blocks' own buttons ---
  var QUICK = [["CCD_EXPOSURE", "button.set", "Expose"], ["CCD_EXPOSURE", "button.abort", "Abort exposure"],
               ["TELESCOPE_PARK", "button[value=PARK]", "Park"], ["TELESCOPE_PARK", "button[value=UNPARK]", "Unpark"],
               ["TELESCOPE_ABORT_MOTION", "button[value=ABORT]", "Abort motion"]];
  var quickBox = main.querySelector(".quickactions");
  function quickActions() {
    if (main.getAttribute("data-operator") !== "1") { return; }
    var buttons = quickBox.querySelector(".buttons");
    var key = QUICK.filter(function (q) { return shown.properties[q[0]]; }).map(function (q) { return q[2]; }).join("|");
    if (buttons.getAttribute("data-key") !== key) {
      buttons.setAttribute("data-key", key);
      buttons.textContent = "";
      QUICK.forEach(function (q) {
        if (!shown.properties[q[0]]) { return; }
        if (q[2] === "Expose") {
          var duration = document.createElement("input");
          duration.className = "qduration";
          duration.setAttribute("aria-label", "exposure (s)");
          duration.setAttribute("placeholder", "seconds");
          duration.setAttribute("inputmode", "decimal");
          buttons.appendChild(duration);
        }
        var button = document.createElement("button");
        button.type = "button";
        button.className = q[2] === "Expose" ? "action" : "";
        button.textContent = q[2];
        button.setAttribute("data-quick", q[0] + "|" + q[1]);
        buttons.appendChild(button);
      });
    }
    quickBox.hidden = key === "";
    var exposure = byData(main, "data-prop", "CCD_EXPOSURE");
    var qduration = buttons.querySelector(".qduration");
    var field = exposure && exposure.querySelector("input[data-kind=number]");
    if (qduration && field && document.activeElement !== qduration && !qduration.hasAttribute("data-dirty")) {
      qduration.value = field.getAttribute("data-target") || "";
    }
  }
  quickBox.addEventListener("input", function (event) { event.target.setAttribute("data-dirty", "1"); });
  quickBox.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-quick]");
    if (!button) { return; }
    var parts = button.getAttribute("data-quick").split("|");
    var block = byData(main, "data-prop", parts[0]);
    var target = block && block.querySelector(parts[1]);
    if (!target) { return; }
    var qduration = quickBox.querySelector(".qduration");
    if (parts[0] === "CCD_EXPOSURE" && parts[1] === "button.set" && qduration && qduration.value.trim()) {
      var field = block.querySelector("input[data-kind=number]");
      field.value = qduration.value.trim();
      field.setAttribute("data-dirty", "1");
      qduration.removeAttribute("data-dirty");
    }
    target.click();
  });

  // -- the device's changes from the stream: whole states, property patches, messages ------------
  var current = null;
  var logEntries = [];
  var LOG_KEPT = 500;  // messages kept by the page, more than the key space keeps
  function mergeLog(entries) {
    var seen = {};
    logEntries.forEach(function (e) { seen[e[0] + "\n" + e[1]] = true; });
    entries.forEach(function (e) {
      if (!seen[e[0] + "\n" + e[1]]) { logEntries.push(e); seen[e[0] + "\n" + e[1]] = true; }
    });
    logEntries.sort(function (a, b) { return a[0] < b[0] ? 1 : (a[0] > b[0] ? -1 : 0); });
    if (logEntries.length > LOG_KEPT) { logEntries.length = LOG_KEPT; }
  }
  deviceChange = function (change) {
    if (change.device !== device) { return; }
    if (change.full) {  // its messages are the key space's few: the stream's log has more
      current = change.full;
      gone = current.order.length === 0;
    }
    if (!current) { return; }
    if (change.props) {
      Object.keys(change.props).forEach(function (name) {
        var old = current.properties[name];
        if (!old) { return; }  // not defined yet: the next whole state has it
        var patch = change.props[name];
        var merged = Object.assign({}, old, patch);
        merged.elements = Object.assign({}, old.elements, patch.elements || {});
        current.properties[name] = merged;
      });
    }
    if (change.log) { mergeLog(change.log); }
    current.messages = logEntries;
    current.status = undefined;
    apply(current);
  };
})();
