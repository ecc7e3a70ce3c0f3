// The kiosk page's only script: comfort on top of plain forms and links.
// Follow the agent's scans, refresh a fitting room's items, go back to the
// start screen when the shopper leaves, send a form once.
(function () {
  "use strict";
  var cfg = document.body.dataset;
  var home = cfg.home || "/kiosk/";
  var idleMS = parseInt(cfg.idle, 10) || 60000;
  var refreshMS = parseInt(cfg.refresh, 10) || 3000;

  function withParam(u, k, v) {
    return u + (u.indexOf("?") < 0 ? "?" : "&") + k + "=" + encodeURIComponent(v);
  }
  function inPlace(u) {
    if (cfg.zone) u = withParam(u, "zone", cfg.zone);
    if (cfg.scanner) u = withParam(u, "scanner", cfg.scanner);
    return u;
  }

  // A picture that does not load (offline, gone) is hidden; the page stays.
  function broken(img) {
    img.classList.add("broken");
    var a = img.closest && img.closest(".product");
    if (a) a.classList.add("noimg");
  }
  document.addEventListener("error", function (e) {
    if (e.target && e.target.tagName === "IMG") broken(e.target);
  }, true);
  Array.prototype.forEach.call(document.images, function (img) {
    if (img.complete && img.naturalWidth === 0) broken(img);
  });

  // A form is sent once: a double tap does not post twice.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.hasAttribute("data-sent")) { e.preventDefault(); return; }
    f.setAttribute("data-sent", "1");
  }, true);
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-sent]"), function (f) {
      f.removeAttribute("data-sent");
    });
  });

  // Back to the start screen when nobody has touched the page for a while.
  var last = Date.now();
  ["pointerdown", "keydown", "input", "touchstart", "wheel"].forEach(function (t) {
    document.addEventListener(t, function () { last = Date.now(); }, { capture: true, passive: true });
  });
  setInterval(function () {
    if (Date.now() - last < idleMS) return;
    last = Date.now();
    if (cfg.page === "start") {
      var c = document.getElementById("code");
      if (c) c.value = "";
      window.scrollTo(0, 0);
      return;
    }
    location.href = withParam(home, "idle", "1");
  }, 1000);

  // A fitting room's items: refreshed as soon as the agent says they
  // changed (the room's stream), and every refreshMS for stock and
  // suggestions (and the items, when the stream is down). A change told
  // while a refresh is on its way refreshes again after it.
  var room = document.getElementById("room");
  var roomURL = cfg.room;
  var shown = null, busy = false, again = false;
  function refreshRoom() {
    if (!room || !roomURL || !window.fetch) return;
    if (busy) { again = true; return; }
    busy = true; again = false;
    function next() {
      busy = false;
      if (again) refreshRoom();
    }
    fetch(roomURL, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html !== null && html !== shown) {
        shown = html;
        room.innerHTML = html;
      }
      next();
    }, next);
  }
  if (room && roomURL) {
    setInterval(refreshRoom, refreshMS);
    if (window.EventSource && cfg.roomStream) {
      var rs = new EventSource(cfg.roomStream);
      rs.addEventListener("room", refreshRoom);
      window.addEventListener("pagehide", function () { rs.close(); });
    }
  }

  // A cart waiting for the till: once it is checked out, the page
  // reloads (into the post-purchase survey, when HQ has one).
  var watch = document.querySelector("[data-watch]");
  if (watch && window.fetch) {
    var watchURL = watch.getAttribute("data-watch");
    setInterval(function () {
      fetch(watchURL, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        if (r.status === 200) location.reload();
      }, function () {});
    }, refreshMS);
  }

  // Scans: show the product without a touch.
  if (window.EventSource) {
    var es = new EventSource("/v1/scans/stream");
    es.addEventListener("scan", function (e) {
      var s;
      try { s = JSON.parse(e.data); } catch (err) { return; }
      if (!s || (cfg.scanner && s.device !== cfg.scanner)) return;
      var sym = s.symbology || "";
      if (sym.indexOf("rfid:") === 0 && cfg.zone) {
        // A fitting room's own reader: the item list, not a new page.
        if (sym.slice(5) === cfg.zone) refreshRoom();
        return;
      }
      var code = s.gtin || s.epc;
      if (!code) return;
      // Someone writing a review is not interrupted.
      var form = document.querySelector(".rvform");
      if (form && form.contains(document.activeElement)) return;
      es.close();
      location.href = inPlace("/kiosk/p/" + encodeURIComponent(code));
    });
    // A page left (a link, a form, the back button) closes its stream at
    // once: a browser keeps a few connections per host, and streams of
    // pages left behind would hold them until the next page waits.
    window.addEventListener("pagehide", function () { es.close(); });
  }
})();
