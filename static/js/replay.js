/* Replay viewer: play and pause at 1x/2x/4x (one event a second at 1x), arrow keys to step.
   Stepping itself is plain links that htmx turns into fragment swaps. */
(function () {
  "use strict";
  var timer = null;

  function player() { return document.getElementById("replay-player"); }
  function playButton() { return document.getElementById("replay-play"); }
  function speed() { var s = document.getElementById("replay-speed"); return s ? parseInt(s.value, 10) || 1 : 1; }

  // A link swapped in becomes an htmx link when the swap settles (htmx processes new content then,
  // 20 ms later): clicked before that it is a plain link, the whole page loads and the player stops.
  function settling() {
    var state = document.getElementById("replay-state");
    return !!state && (state.classList.contains("htmx-swapping") || state.classList.contains("htmx-settling"));
  }

  function step(id) {
    if (settling()) { return true; }  // not yet: the next tick steps
    var link = document.getElementById(id);
    if (link) { link.click(); return true; }
    return false;
  }

  function pause() {
    if (timer) { clearInterval(timer); timer = null; }
    var b = playButton();
    if (b) { b.textContent = "Play"; b.setAttribute("aria-pressed", "false"); }
  }

  function play() {
    pause();
    if (!document.getElementById("replay-next")) { return; }
    var b = playButton();
    b.textContent = "Pause"; b.setAttribute("aria-pressed", "true");
    timer = setInterval(function () { if (!step("replay-next")) { pause(); } }, 1000 / speed());
  }

  function markCurrent() {
    var state = document.querySelector("[data-replay-seq]");
    if (!state) { return; }
    var seq = state.getAttribute("data-replay-seq");
    document.querySelectorAll("#replay-list li").forEach(function (li) {
      var current = li.getAttribute("data-seq") === seq;
      li.classList.toggle("current", current);
      var a = li.querySelector("a");
      if (a) { if (current) { a.setAttribute("aria-current", "step"); } else { a.removeAttribute("aria-current"); } }
      if (current && li.scrollIntoView) { li.scrollIntoView({ block: "nearest" }); }
    });
  }

  function init() {
    var p = player();
    if (!p) { return; }
    p.hidden = false;
    playButton().addEventListener("click", function () { if (timer) { pause(); } else { play(); } });
    document.getElementById("replay-speed").addEventListener("change", function () { if (timer) { play(); } });
    document.addEventListener("keydown", function (evt) {
      var tag = (evt.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "select" || tag === "textarea" || evt.altKey || evt.ctrlKey || evt.metaKey) { return; }
      if (evt.key === "ArrowRight") { pause(); step("replay-next"); evt.preventDefault(); }
      else if (evt.key === "ArrowLeft") { pause(); step("replay-prev"); evt.preventDefault(); }
      else if (evt.key === " ") { if (timer) { pause(); } else { play(); } evt.preventDefault(); }
    });
    document.body.addEventListener("htmx:afterSwap", function (evt) {
      if (evt.detail.target && evt.detail.target.id === "replay-state") { markCurrent(); }
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
