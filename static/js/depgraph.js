/* The live page's dependency graphs of dynamic nodes (templates/executions/partials/dependency_graph.html).
   Live updates carry only the items whose status changed, in #dyn-updates (an out-of-band fragment of
   the websocket message or the poll): this recolours those items and recounts; items the page has
   not drawn yet (the node just started) make it fetch the node's graph once. A click (or Enter) on
   an item opens its step and logs in the log viewer, or its child run. */
(function () {
  "use strict";
  var STATUSES = ["queued", "ready", "running", "completed", "failed", "blocked", "cancelled"];

  function section(node) {
    var found = null;
    document.querySelectorAll(".dep-card[data-dynamic-node]").forEach(function (el) {
      if (el.getAttribute("data-dynamic-node") === node) { found = el; }
    });
    return found;
  }
  function recount(card) {
    var counts = {};
    card.querySelectorAll(".dep-graph .item").forEach(function (g) {
      STATUSES.forEach(function (s) { if (g.classList.contains("status-" + s)) { counts[s] = (counts[s] || 0) + 1; } });
    });
    card.querySelectorAll("[data-count]").forEach(function (el) {
      var n = counts[el.getAttribute("data-count")] || 0;
      el.querySelector(".n").textContent = n;
      el.classList.toggle("zero", !n);
    });
  }
  // Changes that arrive while a node's graph is being fetched are applied to the fresh drawing.
  var pending = {};
  function refetch(card, node) {
    if (card.dataset.loading) { return; }
    card.dataset.loading = "1";
    fetch(card.getAttribute("data-url"), { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
      if (html !== null) { card.querySelector(".dep-frame").innerHTML = html; }
    }).finally(function () {
      delete card.dataset.loading;
      var later = pending[node];
      delete pending[node];
      if (later) { applyTo(card, node, later, true); } else { recount(card); }
    });
  }
  var RANK = { queued: 0, ready: 1, running: 2, completed: 3, failed: 3, blocked: 3, cancelled: 3 };
  function statusOf(g) {
    for (var i = 0; i < STATUSES.length; i++) { if (g.classList.contains("status-" + STATUSES[i])) { return STATUSES[i]; } }
    return "queued";
  }
  function applyTo(card, node, changes, afterFetch) {
    if (card.dataset.loading) {
      pending[node] = Object.assign(pending[node] || {}, changes);
      return;
    }
    var items = {}, missing = false;
    card.querySelectorAll(".dep-graph .item").forEach(function (g) { items[g.getAttribute("data-item")] = g; });
    Object.keys(changes).forEach(function (item) {
      var g = items[item], status = changes[item];
      if (!g) { missing = true; return; }
      // A status never goes back within a run: an older message (or a fetch answered after a
      // newer message) must not undo a newer one.
      if ((RANK[status] || 0) < (RANK[statusOf(g)] || 0)) { return; }
      STATUSES.forEach(function (s) { g.classList.remove("status-" + s); });
      g.classList.add("status-" + status);
      var label = g.getAttribute("aria-label") || "";
      g.setAttribute("aria-label", label.replace(/^([^:]*): [a-z]+/, "$1: " + status));
    });
    if (missing && !afterFetch) { pending[node] = Object.assign(pending[node] || {}, changes); refetch(card, node); } else { recount(card); }
  }
  function apply() {
    var box = document.getElementById("dyn-updates");
    if (!box || box.dataset.applied) { return; }
    box.dataset.applied = "1";
    var changes;
    try { changes = JSON.parse(box.getAttribute("data-changes") || "{}"); } catch (e) { return; }
    Object.keys(changes || {}).forEach(function (node) {
      var card = section(node);
      if (card) { applyTo(card, node, changes[node], false); }
    });
  }
  ["htmx:oobAfterSwap", "htmx:wsAfterMessage", "htmx:afterSwap", "htmx:afterSettle"].forEach(function (name) {
    document.addEventListener(name, apply);
  });

  function open(item) {
    var url = item.getAttribute("data-url");
    var viewer = document.getElementById("log-viewer");
    if (!url) { return; }
    if (window.htmx && viewer) {
      // The server answers the step and its logs, or sends the page to the item's child run.
      htmx.ajax("GET", url, { target: "#log-viewer", swap: "innerHTML" }).then(function () { viewer.scrollIntoView({ block: "nearest" }); });
    } else {
      window.location.href = url;
    }
  }
  document.addEventListener("click", function (evt) {
    var item = evt.target.closest && evt.target.closest(".dep-graph .item");
    if (item) { open(item); }
  });
  document.addEventListener("keydown", function (evt) {
    var item = evt.target.closest && evt.target.closest(".dep-graph .item");
    if (item && (evt.key === "Enter" || evt.key === " ")) { evt.preventDefault(); open(item); }
  });
})();
