/* Live execution page: what htmx's ws extension cannot do on its own.
   - hold the polling fallback back while the websocket is open and delivering, but let a poll
     through when it has been quiet for a while (a safety net: a missed update cannot leave the
     page behind for good, and a poll is cheap, it answers only what is new);
   - never apply fragments older than what the page shows (a slow poll answered after a newer
     websocket message);
   - reconnect the websocket from where the page is, not from where it was rendered;
   - keep timeline rows unique (a reconnect may resend rows the page has);
   - tick the elapsed-time clock between updates;
   - the error overlay's "Copy details" button. */
(function () {
  "use strict";
  var QUIET_MS = 5000;
  var socketOpen = false;
  var lastNews = Date.now();

  function news() { lastNews = Date.now(); }
  document.addEventListener("htmx:wsOpen", function () { socketOpen = true; news(); document.body.classList.add("ws-open"); });
  document.addEventListener("htmx:wsClose", function () { socketOpen = false; document.body.classList.remove("ws-open"); });
  document.addEventListener("htmx:wsError", function () { socketOpen = false; document.body.classList.remove("ws-open"); });
  document.addEventListener("htmx:wsAfterMessage", news);

  function isPoller(elt) { return elt && elt.id === "live-poller"; }

  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (isPoller(evt.detail.elt) && socketOpen && Date.now() - lastNews < QUIET_MS) { evt.preventDefault(); }
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (isPoller(evt.detail.elt)) { news(); }
  });

  // The last event seq the page shows, and the one a set of fragments brings (its poller's).
  function pageSeq() {
    var poller = document.getElementById("live-poller");
    return poller ? parseInt(poller.getAttribute("data-last-seq"), 10) : NaN;
  }
  function fragmentSeq(html) {
    var match = /id="live-poller"[^>]*data-last-seq="(\d+)"/.exec(html || "");
    return match ? parseInt(match[1], 10) : NaN;
  }
  function isStale(html) { return fragmentSeq(html) < pageSeq(); }
  document.addEventListener("htmx:wsBeforeMessage", function (evt) {
    if (isStale(evt.detail.message)) { evt.preventDefault(); }
  });
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (isPoller(evt.detail.elt) && isStale(evt.detail.serverResponse)) { evt.preventDefault(); }
  });

  if (window.htmx && htmx.createWebSocket) {
    var createWebSocket = htmx.createWebSocket;
    htmx.createWebSocket = function (url) {
      var seq = pageSeq();
      return createWebSocket(isNaN(seq) ? url : url.replace(/([?&]after=)\d*/, "$1" + seq));
    };
  }

  function dedupeTimeline() {
    var list = document.getElementById("timeline-rows");
    if (!list) { return; }
    var seen = {};
    Array.prototype.slice.call(list.children).forEach(function (row) {
      if (seen[row.id]) { row.remove(); } else { seen[row.id] = true; }
    });
  }
  document.addEventListener("htmx:oobAfterSwap", dedupeTimeline);
  document.addEventListener("htmx:wsAfterMessage", dedupeTimeline);

  // A duration as the server writes it (apps/metrics/charts.py format_ms): "850 ms", "4.2 s",
  // "42 s", "3 min 4 s", "2 h 5 min", "3 d 4 h".
  function formatDuration(ms) {
    if (ms < 1000) { return Math.round(ms) + " ms"; }
    var seconds = ms / 1000;
    if (Math.round(seconds * 10) / 10 < 10) { return seconds.toFixed(1) + " s"; }
    if (Math.round(seconds) < 60) { return Math.round(seconds) + " s"; }
    var total = Math.round(seconds);
    if (total < 3600) { var m = Math.floor(total / 60), s = total % 60; return m + " min" + (s ? " " + s + " s" : ""); }
    var minutes = Math.round(seconds / 60);
    if (minutes < 48 * 60) { var h = Math.floor(minutes / 60), mm = minutes % 60; return h + " h" + (mm ? " " + mm + " min" : ""); }
    var hours = Math.round(seconds / 3600), d = Math.floor(hours / 24), hh = hours % 24;
    return d + " d" + (hh ? " " + hh + " h" : "");
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-live-clock]").forEach(function (el) {
      var base = parseInt(el.getAttribute("data-live-clock"), 10);
      if (!el.dataset.clockT0) { el.dataset.clockT0 = String(now); }
      var ms = base + (now - parseInt(el.dataset.clockT0, 10));
      el.textContent = formatDuration(ms);
    });
  }
  setInterval(tick, 1000);

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest("[data-copy-target]") : null;
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) { return; }
    var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy details"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(done, function () { source.select(); document.execCommand("copy"); done(); });
    } else {
      source.classList.remove("visually-hidden"); source.select(); document.execCommand("copy"); source.classList.add("visually-hidden"); done();
    }
  });
})();
