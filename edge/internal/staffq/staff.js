// The associates' queue: follows /staff/stream (Server-Sent Events), falls
// back to polling /staff/requests every second, and ticks the timers.
(function () {
  "use strict";
  var list = document.getElementById("list");
  var conn = document.getElementById("conn");
  var snap = null, offset = 0, polling = null;
  var reasons = { size: "Another size", colour: "Another colour", help: "Needs help" };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function clock(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }
  function now() { return Date.now() + offset; }
  // age says how long ago, as an associate reads it: "<1 min", "12 min",
  // "3 h", "2 days".
  function age(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return "<1 min";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 48 * 3600) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " days";
  }

  function item(it) {
    if (!it) return "";
    var t = it.name || it.sku;
    if (it.variant) t += " · " + it.variant;
    return t;
  }

  function render() {
    if (!snap) return;
    list.textContent = "";
    if (!snap.requests.length) { list.appendChild(el("p", "empty", "No requests yet.")); return; }
    snap.requests.forEach(function (r) {
      var esc = r.state === "open" && (r.escalated_ms || now() - r.created_ms >= snap.escalate_after_ms);
      var li = el("section", "req " + r.state + (esc ? " escalated" : ""));
      li.dataset.id = r.id;
      li.dataset.state = r.state;
      var top = el("div", "top");
      var room = el("span", "room", r.zone);
      var t = el("span", "timer");
      t.dataset.since = r.state === "done" ? "" : (r.state === "claimed" ? r.claimed_ms : r.created_ms);
      t.textContent = r.state === "done" ? "done in " + clock(r.done_ms - r.created_ms) : clock(now() - t.dataset.since);
      top.appendChild(room); top.appendChild(t);
      li.appendChild(top);
      var what = el("p", "what");
      var label = reasons[r.reason] || r.reason;
      // A suggestion she asked for from the mirror: another product.
      if (r.reason !== "help" && r.trying && r.fetch.name && r.trying.name && r.trying.name !== r.fetch.name) label = "A suggestion to try";
      what.appendChild(el("b", "reason", label));
      if (esc) what.appendChild(el("span", "badge", "ESCALATED"));
      if (r.trying) what.appendChild(document.createTextNode(" — trying " + item(r.trying)));
      li.appendChild(what);
      if (r.reason !== "help") {
        var f = el("div", "fetch");
        f.appendChild(document.createTextNode("Bring: "));
        f.appendChild(el("b", "fetch-item", item(r.fetch)));
        var m = "SKU " + r.fetch.sku + (r.fetch.gtin ? " · GTIN " + r.fetch.gtin : "");
        if (r.fetch.here !== undefined && r.fetch.here !== null) m += " · " + (r.fetch.here > 0 ? r.fetch.here + " in store" : "none in store");
        f.appendChild(el("div", "meta", m));
        var loc = r.fetch.location;
        if (loc && loc.area) {
          // Where a stock sweep last read it, and the units it read there.
          var w = el("div", "where");
          w.appendChild(document.createTextNode("Where: "));
          w.appendChild(el("b", "area", loc.area));
          var seen = el("span", "seen", " (seen " + age(now() - loc.seen_ms) + " ago)");
          seen.dataset.seen = loc.seen_ms;
          w.appendChild(seen);
          if (loc.units && loc.units.length) w.appendChild(el("div", "meta units", "Units: " + loc.units.join(", ")));
          f.appendChild(w);
        }
        li.appendChild(f);
      }
      if (r.note) li.appendChild(el("p", "meta", r.note));
      if (r.claimed_by) li.appendChild(el("p", "meta", "Taken by " + r.claimed_by));
      var acts = el("div", "acts");
      if (r.state === "open") acts.appendChild(button("Claim", "claim", r.id));
      if (r.state !== "done") acts.appendChild(button("Done", "done", r.id));
      li.appendChild(acts);
      list.appendChild(li);
    });
  }

  function button(label, action, id) {
    var b = el("button", action, label);
    b.type = "button";
    b.dataset.action = action;
    b.addEventListener("click", function () {
      b.disabled = true;
      fetch("/staff/requests/" + encodeURIComponent(id) + "/" + action, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ by: localStorage.getItem("staff-name") || "" })
      }).then(function () { if (polling) poll(); }).catch(function () { b.disabled = false; });
    });
    return b;
  }

  function take(s) {
    snap = s;
    offset = s.now_ms - Date.now();
    render();
  }

  function poll() {
    fetch("/staff/requests", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
      conn.textContent = "live (polling)"; conn.className = ""; take(s);
    }).catch(function () { conn.textContent = "agent unreachable"; conn.className = "off"; });
  }

  function startPolling() {
    if (polling) return;
    poll();
    polling = setInterval(poll, 1000);
  }

  if (window.EventSource) {
    var es = new EventSource("/staff/stream");
    es.onopen = function () {
      conn.textContent = "live"; conn.className = "";
      if (polling) { clearInterval(polling); polling = null; }
    };
    es.onmessage = function (e) { take(JSON.parse(e.data)); };
    es.onerror = function () { conn.textContent = "reconnecting…"; conn.className = "off"; startPolling(); };
    window.addEventListener("pagehide", function () { es.close(); });
  } else {
    startPolling();
  }
  // Timers tick without rebuilding the list (a button under a finger
  // stays put); the list is rebuilt only when a request becomes overdue.
  function tick() {
    if (!snap) return;
    var overdue = false;
    Array.prototype.forEach.call(list.querySelectorAll(".req"), function (li) {
      var t = li.querySelector(".timer");
      if (t && t.dataset.since) t.textContent = clock(now() - t.dataset.since);
      var sn = li.querySelector(".seen");
      if (sn) sn.textContent = " (seen " + age(now() - sn.dataset.seen) + " ago)";
      if (li.dataset.state === "open" && !li.classList.contains("escalated")) {
        snap.requests.forEach(function (r) {
          if (r.id === li.dataset.id && now() - r.created_ms >= snap.escalate_after_ms) overdue = true;
        });
      }
    });
    if (overdue) render();
  }
  setInterval(tick, 1000);
})();
