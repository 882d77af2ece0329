/* Live execution page: what htmx's ws extension cannot do on its own.
   - hold the polling fallback back while the websocket is open;
   - keep timeline rows unique (a reconnect may resend rows the page has);
   - tick the elapsed-time clock between updates;
   - the error overlay's "Copy details" button. */
(function () {
  "use strict";
  var socketOpen = false;

  document.addEventListener("htmx:wsOpen", function () { socketOpen = true; document.body.classList.add("ws-open"); });
  document.addEventListener("htmx:wsClose", function () { socketOpen = false; document.body.classList.remove("ws-open"); });
  document.addEventListener("htmx:wsError", function () { socketOpen = false; document.body.classList.remove("ws-open"); });

  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (socketOpen && evt.detail.elt && evt.detail.elt.id === "live-poller") { evt.preventDefault(); }
  });

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

  var clockStarted = {};
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-live-clock]").forEach(function (el) {
      var base = parseInt(el.getAttribute("data-live-clock"), 10);
      if (!el.dataset.clockT0) { el.dataset.clockT0 = String(now); }
      var ms = base + (now - parseInt(el.dataset.clockT0, 10));
      el.textContent = ms.toLocaleString("en-US") + " ms";
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
