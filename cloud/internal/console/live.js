// The HQ console's live updates: one server-sent event stream per page
// (/v1/stream); when a change concerns what the page shows (its
// data-skus, the change flag named by data-on, or anything when it names
// neither), the page re-reads itself and swaps its [data-live] region in
// place. No reloads, no framework. A region is not swapped while the user
// works in one of its forms: the swap waits until the focus leaves the
// region, so a half-typed mapping is never wiped.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  var state = document.getElementById("live-state");
  if (!window.EventSource) { return; }
  var skus = live ? (live.getAttribute("data-skus") || "").split(" ").filter(Boolean) : [];
  var on = live ? live.getAttribute("data-on") : null;
  var timer = null, busy = false, again = false, held = false;
  function show(s) { if (state) { state.textContent = s; state.className = "live-" + s; } }
  function relevant(ch) {
    if (on) { return !!(ch.all || ch[on]); }
    if (!skus.length || ch.all) { return true; }
    return (ch.positions || []).some(function (p) { return skus.indexOf(p.sku) >= 0; });
  }
  function editing() {
    var a = document.activeElement;
    return !!a && live.contains(a) && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(a.tagName);
  }
  function refresh() {
    timer = null;
    if (editing()) { held = true; return; }
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.querySelector("[data-live]");
        if (next) {
          live.replaceChildren.apply(live, Array.prototype.slice.call(next.childNodes));
          live.setAttribute("data-updated", String(Date.now()));
        }
      })
      .catch(function () { show("stale"); })
      .then(function () { busy = false; if (again) { again = false; schedule(); } });
  }
  function schedule() { if (live && !timer) { timer = setTimeout(refresh, 50); } }
  if (live) {
    // Focus moving from a field to its form's button is still editing.
    live.addEventListener("focusout", function (e) {
      if (held && !(e.relatedTarget && live.contains(e.relatedTarget))) { held = false; schedule(); }
    });
  }
  var es = new EventSource("/v1/stream");
  var opened = false;
  es.addEventListener("hello", function () { show("live"); if (opened) { schedule(); } opened = true; });
  es.addEventListener("change", function (e) {
    try { if (relevant(JSON.parse(e.data))) { schedule(); } } catch (err) { schedule(); }
  });
  es.addEventListener("logout", function () { es.close(); show("offline"); });
  es.onerror = function () { show("reconnecting"); };
})();
