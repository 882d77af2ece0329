/* Live execution page: what htmx's ws extension cannot do on its own.
   - hold the polling fallback back while the websocket is open and delivering, but let a poll
     through when it has been quiet for a while (a safety net: a missed update cannot leave the
     page behind for good, and a poll is cheap, it answers only what is new);
   - never apply fragments older than what the page shows (a slow poll answered after a newer
     websocket message);
   - reconnect the websocket from where the page is, not from where it was rendered;
   - apply what an update says changed (#live-changes, templates/executions/partials/live_changes.html):
     each changed step's row replaced by id or put after the row it follows, each changed node's
     status class in the graph; and ask for the whole panel once (?full=1) when the page is out of
     sync: an update that starts past what the page shows (a message lost on the way), or a row or
     element it should change that the page does not have;
   - keep timeline rows unique (a reconnect may resend rows the page has);
   - tick the elapsed-time clock and count the ETA down between updates;
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

  var fullPending = false;
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
  // The seq an update starts from: it brings the page from there to its last_seq.
  function fromSeq(html) {
    var match = /id="live-changes"[^>]*data-from-seq="(\d+)"/.exec(html || "");
    return match ? parseInt(match[1], 10) : NaN;
  }
  function isStale(html) { return fragmentSeq(html) < pageSeq(); }
  function isAhead(html) { return fromSeq(html) > pageSeq(); }

  // The whole panel from where the page is, once: the page is out of sync.
  function requestFull() {
    var live = document.getElementById("live");
    var url = live && live.getAttribute("data-live-url");
    if (fullPending || !url || !window.htmx) { return; }
    var seq = pageSeq();
    fullPending = true;
    var done = function () { fullPending = false; };
    // From #live, which no update replaces (every update replaces the poller, and htmx would apply
    // an answer to a replaced element's detached copy, not the page).
    htmx.ajax("GET", url + "?after=" + (isNaN(seq) ? 0 : seq) + "&full=1", { source: live, swap: "none" }).then(done, done);
  }

  function screen(evt, html) {
    if (isStale(html)) { evt.preventDefault(); return; }
    if (isAhead(html)) { evt.preventDefault(); requestFull(); }
  }
  document.addEventListener("htmx:wsBeforeMessage", function (evt) { screen(evt, evt.detail.message); });
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var elt = evt.detail.elt;
    if (isPoller(elt) || (elt && elt.id === "live")) { screen(evt, evt.detail.serverResponse); }
  });
  // An out-of-band fragment whose element the page does not have: the page is not what the server thinks.
  document.addEventListener("htmx:oobErrorNoTarget", requestFull);

  function applyRows(box) {
    var templates = box.querySelectorAll("template");
    var body = document.getElementById("steps-body");
    if (!templates.length) { return true; }
    if (!body) { return false; }
    var ok = true;
    Array.prototype.forEach.call(templates, function (tpl) {
      var row = tpl.content.querySelector("tr");
      if (!row) { return; }
      var existing = document.getElementById(row.id);
      if (existing) {
        existing.replaceWith(row);
      } else {
        var after = tpl.getAttribute("data-after");
        var previous = after ? document.getElementById("step-row-" + after) : null;
        if (after && !previous) { ok = false; return; }
        if (previous) { previous.after(row); } else { body.insertBefore(row, body.firstChild); }
      }
      if (window.htmx) { htmx.process(row); }
    });
    return ok;
  }

  function applyNodes(box) {
    var changes;
    try { changes = JSON.parse(box.getAttribute("data-nodes") || "{}"); } catch (e) { return; }
    var graph = document.getElementById("exec-graph");
    if (!graph || !changes) { return; }
    var touched = false;
    Object.keys(changes).forEach(function (id) {
      var node = graph.querySelector('.node[data-node-id="' + CSS.escape(id) + '"]');
      if (!node) { return; }  // not drawn (a dynamic node's items): nothing to recolour
      var status = changes[id];
      Array.prototype.slice.call(node.classList).forEach(function (c) { if (c.indexOf("status-") === 0) { node.classList.remove(c); } });
      node.classList.add("status-" + status);
      var title = node.querySelector("title");
      if (title) { title.textContent = title.textContent.replace(/: [a-z]+$/, ": " + status); }
      touched = true;
    });
    var desc = graph.querySelector("desc");
    if (touched && desc) {  // what a screen reader reads for the whole graph: summary, then each node
      var spoken = Array.prototype.map.call(graph.querySelectorAll(".node title"), function (t) { return t.textContent; });
      desc.textContent = desc.textContent.split(" Steps: ")[0] + (spoken.length ? " Steps: " + spoken.join("; ") + "." : "");
    }
  }

  function applyChanges() {
    var box = document.getElementById("live-changes");
    if (!box || box.dataset.applied) { return; }
    box.dataset.applied = "1";
    if (box.hasAttribute("data-full")) { return; }  // the whole panel came: nothing to patch
    applyNodes(box);
    if (!applyRows(box)) { requestFull(); }
  }
  ["htmx:oobAfterSwap", "htmx:wsAfterMessage", "htmx:afterSwap", "htmx:afterSettle"].forEach(function (name) {
    document.addEventListener(name, applyChanges);
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
    // The ETA counts down between updates (they do not resend it); past it the run is late.
    document.querySelectorAll("[data-live-eta]").forEach(function (el) {
      if (!el.dataset.etaT0) { el.dataset.etaT0 = String(now); }
      var left = parseInt(el.getAttribute("data-live-eta"), 10) - (now - parseInt(el.dataset.etaT0, 10));
      if (left > 0) { el.textContent = "about " + formatDuration(left) + " left"; return; }
      var typical = el.getAttribute("data-typical");
      var late = document.createElement("span");
      late.className = "muted";
      late.textContent = typical ? "longer than usual (recent runs took " + typical + ")" : "longer than expected";
      el.parentNode.replaceChildren(late);
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
