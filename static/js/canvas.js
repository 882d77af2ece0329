/* The canvas editor over the server-rendered SVG (templates/workflows/partials/canvas.html).
   Every change is one POST of operations to the canvas URL, which runs them through the editing
   service (row lock, revision check, a version each) and answers the redrawn canvas; this file only
   turns gestures into operations:
   - drag a node to move it (into a loop body or parallel branch when dropped on its container);
   - drag from a node's port to another node to connect them;
   - click a node or a connection to select it; Delete removes it, "Edit label" labels a connection;
   - drag a node type from the palette onto the canvas (or click it) to add a node;
   - undo and redo send back the definition before or after a change (each is a version too);
   - wheel zooms, dragging the background pans, "Fit" shows everything; arrow keys nudge the
     selected node.
   A 409 (someone saved meanwhile) shows the server's message and keeps their version. */
(function () {
  "use strict";
  var root = document.getElementById("canvas-editor");
  if (!root) { return; }
  var frame = root.querySelector(".canvas-frame");
  var alertBox = root.querySelector(".canvas-alert");
  var statusBox = root.querySelector(".canvas-status");
  var labelForm = root.querySelector(".canvas-label-form");
  var url = root.getAttribute("data-canvas-url");
  var nodeUrl = root.getAttribute("data-node-url").replace(/x$/, "");
  var csrf = "";
  try { csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; } catch (e) { csrf = ""; }
  var SVGNS = "http://www.w3.org/2000/svg";
  var undoStack = [], redoStack = [];
  var selected = null;   // {kind: "node", id} or {kind: "edge", source, target, edgeKind, label}
  var busy = false;
  var view = null;       // the viewBox the user chose (kept across redraws)
  var nodes = {}, edgesOf = {};

  function svg() { return frame.querySelector("svg.wb-canvas"); }
  function data() {
    var el = frame.querySelector("#canvas-data");
    return el ? JSON.parse(el.textContent) : { revision: "", definition: {} };
  }
  function revision() { var s = svg(); return s ? s.getAttribute("data-revision") : ""; }
  function say(text) { statusBox.textContent = text; }
  function showAlert(text) {
    alertBox.querySelector(".canvas-alert-text").textContent = text;
    alertBox.hidden = false;
  }

  //
  // View: zoom, pan, fit
  //

  function setView(v) { view = v; svg().setAttribute("viewBox", [v.x, v.y, v.w, v.h].map(function (n) { return Math.round(n * 10) / 10; }).join(" ")); }
  function currentView() { var b = svg().viewBox.baseVal; return { x: b.x, y: b.y, w: b.width, h: b.height }; }
  function fit() {
    var f = svg().getAttribute("data-fit").split(" ").map(Number);
    setView({ x: f[0], y: f[1], w: f[2], h: f[3] });
  }
  function point(evt, matrix) {
    var s = svg(), p = s.createSVGPoint();
    p.x = evt.clientX; p.y = evt.clientY;
    return p.matrixTransform(matrix || s.getScreenCTM().inverse());
  }
  function zoom(factor, center) {
    var v = currentView();
    var c = center || { x: v.x + v.w / 2, y: v.y + v.h / 2 };
    var w = Math.min(Math.max(v.w * factor, 80), 40000);
    var k = w / v.w;
    setView({ x: c.x - (c.x - v.x) * k, y: c.y - (c.y - v.y) * k, w: w, h: v.h * k });
  }

  //
  // Drawing while dragging (the server redraws after each change)
  //

  function index() {
    nodes = {}; edgesOf = {};
    var s = svg();
    if (!s) { return; }
    s.querySelectorAll(".node").forEach(function (g) {
      var rect = g.querySelector("rect");
      nodes[g.getAttribute("data-node-id")] = {
        g: g, x: parseFloat(g.getAttribute("data-x")), y: parseFloat(g.getAttribute("data-y")),
        w: parseFloat(rect.getAttribute("width")), h: parseFloat(rect.getAttribute("height")),
      };
    });
    s.querySelectorAll(".edge").forEach(function (g) {
      [g.getAttribute("data-from"), g.getAttribute("data-to")].forEach(function (id) {
        (edgesOf[id] = edgesOf[id] || []).push(g);
      });
    });
  }
  function curve(a, b) {
    var sx = a.x + a.w / 2, sy = a.y + a.h, tx = b.x + b.w / 2, ty = b.y;
    var d = Math.max(40, Math.abs(ty - sy) / 2);
    return { d: "M" + sx + "," + sy + " C" + sx + "," + (sy + d) + " " + tx + "," + (ty - d) + " " + tx + "," + ty, x: (sx + tx) / 2, y: (sy + ty) / 2 };
  }
  function redrawEdges(id) {
    (edgesOf[id] || []).forEach(function (g) {
      var a = nodes[g.getAttribute("data-from")], b = nodes[g.getAttribute("data-to")];
      if (!a || !b) { return; }
      var c = curve(a, b);
      g.querySelectorAll("path").forEach(function (p) { p.setAttribute("d", c.d); });
      var label = g.querySelector(".edge-label");
      if (label) { label.setAttribute("x", c.x); label.setAttribute("y", c.y); }
    });
  }
  function place(id, x, y) {
    var n = nodes[id];
    n.x = x; n.y = y;
    n.g.setAttribute("transform", "translate(" + x + "," + y + ")");
    redrawEdges(id);
  }

  //
  // Selection
  //

  function select(target) {
    var s = svg();
    s.querySelectorAll(".selected").forEach(function (el) { el.classList.remove("selected"); });
    selected = null;
    if (target && target.classList.contains("node")) {
      target.classList.add("selected");
      selected = { kind: "node", id: target.getAttribute("data-node-id") };
      say("Selected node " + selected.id + ".");
    } else if (target && target.classList.contains("edge")) {
      target.classList.add("selected");
      selected = { kind: "edge", source: target.getAttribute("data-from"), target: target.getAttribute("data-to"), edgeKind: target.getAttribute("data-kind"), label: target.getAttribute("data-label") || "" };
      say("Selected connection " + selected.source + " → " + selected.target + ".");
    }
    root.querySelector("[data-action=delete]").disabled = !selected;
    root.querySelector("[data-action=label]").disabled = !(selected && selected.kind === "edge" && (selected.edgeKind === "edge" || selected.edgeKind === "case"));
    if (!selected || selected.kind !== "edge") { labelForm.hidden = true; }
  }
  function reselect() {
    if (!selected) { select(null); return; }
    var s = svg(), el = null;
    if (selected.kind === "node") { el = s.querySelector('.node[data-node-id="' + CSS.escape(selected.id) + '"]'); }
    else { el = s.querySelector('.edge[data-from="' + CSS.escape(selected.source) + '"][data-to="' + CSS.escape(selected.target) + '"]'); }
    select(el);
  }

  //
  // Talking to the server
  //

  var deferred = null;  // a redraw that arrived mid-gesture, applied when the gesture ends
  function swap(html) {
    if (drag && drag.type !== "palette") { deferred = html; return; }
    deferred = null;
    var keep = view;
    frame.innerHTML = html;
    if (keep) { setView(keep); }
    index();
    reselect();
    var rev = revision();
    document.querySelectorAll('input[name="revision"]').forEach(function (input) { input.value = rev; });
  }
  function refreshForms() {
    // The node and edge tables, the forms and the problem list below stay true to the canvas.
    fetch(window.location.pathname, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
      if (!html) { return; }
      var doc = new DOMParser().parseFromString(html, "text/html");
      ["editor-problems"].forEach(function (id) {
        var fresh = doc.getElementById(id), old = document.getElementById(id);
        if (fresh && old) { old.replaceWith(fresh); }
      });
      var fresh = doc.querySelector(".editor"), old = document.querySelector(".editor");
      if (fresh && old) { old.replaceWith(fresh); }
      var rev = revision();
      document.querySelectorAll('input[name="revision"]').forEach(function (input) { input.value = rev; });
    }).catch(function () {});
  }
  function reload() {
    return fetch(url, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(swap);
  }
  function updateHistoryButtons() {
    root.querySelector("[data-action=undo]").disabled = !undoStack.length;
    root.querySelector("[data-action=redo]").disabled = !redoStack.length;
  }

  /* POST `ops` after whatever is already on its way (each carries the revision its predecessor
     answered); resolves true when saved. `history` false for undo/redo themselves. */
  var queue = Promise.resolve();
  function send(ops, done, history) {
    var result = queue.then(function () { return post(ops, done, history); });
    queue = result.catch(function () {});
    return result;
  }
  function post(ops, done, history) {
    busy = true;
    root.classList.add("saving");
    var before = data().definition;
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ revision: revision(), ops: ops }),
    }).then(function (r) {
      if (r.ok) {
        return r.text().then(function (html) {
          swap(html);
          if (history !== false) { undoStack.push(before); redoStack = []; }
          updateHistoryButtons();
          alertBox.hidden = true;
          say(done + " Saved.");
          refreshForms();
          return true;
        });
      }
      return r.json().catch(function () { return { detail: "The server refused the change (" + r.status + ")." }; }).then(function (body) {
        showAlert(body.detail || "The change was not saved.");
        if (r.status !== 409) { reload(); }
        return false;
      });
    }).catch(function () {
      showAlert("The change could not be sent: check your connection and try again.");
      reload();
      return false;
    }).finally(function () { busy = false; root.classList.remove("saving"); });
  }

  function undo() {
    if (!undoStack.length || busy) { return; }  // one step at a time: the stacks change when it lands
    var target = undoStack.pop(), current = data().definition;
    send([{ op: "replace", definition: target }], "Undone.", false).then(function (ok) {
      if (ok) { redoStack.push(current); } else { undoStack.push(target); }
      updateHistoryButtons();
    });
  }
  function redo() {
    if (!redoStack.length || busy) { return; }
    var target = redoStack.pop(), current = data().definition;
    send([{ op: "replace", definition: target }], "Redone.", false).then(function (ok) {
      if (ok) { undoStack.push(current); } else { redoStack.push(target); }
      updateHistoryButtons();
    });
  }
  function removeSelected() {
    if (!selected) { return; }
    if (selected.kind === "node") {
      send([{ op: "delete_node", node: selected.id }], "Deleted node " + selected.id + ".");
      selected = null;
    } else {
      send([{ op: "disconnect", source: selected.source, target: selected.target, kind: selected.edgeKind }], "Removed connection " + selected.source + " → " + selected.target + ".");
      selected = null;
    }
  }

  //
  // Drop targets
  //

  function containerAt(p, exceptOwner) {
    var hit = null;
    svg().querySelectorAll(".container").forEach(function (g) {  // outer first: the last hit is innermost
      if (exceptOwner && g.getAttribute("data-owner") === exceptOwner) { return; }
      var r = g.querySelector("rect");
      var x = parseFloat(r.getAttribute("x")), y = parseFloat(r.getAttribute("y"));
      if (p.x >= x && p.y >= y && p.x <= x + parseFloat(r.getAttribute("width")) && p.y <= y + parseFloat(r.getAttribute("height"))) { hit = g.getAttribute("data-graph"); }
    });
    return hit;
  }
  function nodeAt(evt) {
    var el = document.elementFromPoint(evt.clientX, evt.clientY);
    return el && el.closest ? el.closest("svg.wb-canvas .node") : null;
  }
  function graphForNewNode(evt, p) {
    var onNode = nodeAt(evt);
    if (onNode && onNode.getAttribute("data-node-type") === "loop") { return onNode.getAttribute("data-node-id") + ".body"; }
    if (onNode && onNode.getAttribute("data-node-type") === "parallel") { return onNode.getAttribute("data-node-id") + ".branches[new]"; }
    return containerAt(p) || "";
  }

  //
  // Gestures
  //

  var drag = null;  // {type: "node"|"port"|"pan"|"palette", ...}

  frame.addEventListener("pointerdown", function (evt) {
    if (evt.button !== 0) { return; }
    var s = svg();
    if (!s || !s.contains(evt.target)) { return; }
    var matrix = s.getScreenCTM().inverse();
    var port = evt.target.closest(".port");
    var node = evt.target.closest(".node");
    var edge = evt.target.closest(".edge");
    if (port && node) {
      var line = document.createElementNS(SVGNS, "path");
      line.setAttribute("class", "draft-edge");
      s.querySelector(".viewport").appendChild(line);
      drag = { type: "port", source: node.getAttribute("data-node-id"), line: line, matrix: matrix };
    } else if (node) {
      var id = node.getAttribute("data-node-id");
      drag = { type: "node", id: id, start: point(evt, matrix), x: nodes[id].x, y: nodes[id].y, moved: false, matrix: matrix, g: node };
    } else if (edge) {
      select(edge);
      return;
    } else {
      drag = { type: "pan", start: point(evt, matrix), view: currentView(), matrix: matrix, moved: false };
    }
    evt.preventDefault();
  });

  document.addEventListener("pointermove", function (evt) {
    if (!drag) { return; }
    if (drag.type === "palette") { drag.moved = true; document.body.classList.add("canvas-placing"); return; }
    var p = point(evt, drag.matrix);
    if (drag.type === "node") {
      var dx = p.x - drag.start.x, dy = p.y - drag.start.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) { return; }
      drag.moved = true;
      drag.g.classList.add("dragging");
      place(drag.id, Math.round(drag.x + dx), Math.round(drag.y + dy));
    } else if (drag.type === "port") {
      var n = nodes[drag.source];
      drag.line.setAttribute("d", "M" + (n.x + n.w / 2) + "," + (n.y + n.h) + " L" + p.x + "," + p.y);
    } else if (drag.type === "pan") {
      drag.moved = true;
      setView({ x: drag.view.x - (p.x - drag.start.x), y: drag.view.y - (p.y - drag.start.y), w: drag.view.w, h: drag.view.h });
    }
  });

  document.addEventListener("pointerup", function (evt) {
    var d = drag;
    drag = null;
    document.body.classList.remove("canvas-placing");
    if (!d) { return; }
    if (d.type === "node") {
      d.g.classList.remove("dragging");
      if (!d.moved) { if (deferred) { swap(deferred); } select(d.g); return; }
      var n = nodes[d.id];
      var op = { op: "move_node", node: d.id, x: n.x, y: n.y };
      var into = containerAt(point(evt, d.matrix), d.id) || "";
      if (into !== d.g.getAttribute("data-graph")) { op.graph = into; }
      if (deferred) { swap(deferred); }  // the newer drawing (and revision) first, then this move
      send([op], "Moved " + d.id + (op.graph !== undefined ? " into " + (op.graph || "the top level") : "") + ".");
    } else if (d.type === "port") {
      d.line.remove();
      var target = nodeAt(evt);
      if (deferred) { swap(deferred); }
      if (target && target.getAttribute("data-node-id") !== d.source) {
        var to = target.getAttribute("data-node-id");
        send([{ op: "connect", source: d.source, target: to }], "Connected " + d.source + " → " + to + ".");
      }
    } else if (d.type === "pan") {
      if (deferred) { swap(deferred); }
      if (!d.moved) { select(null); }
    } else if (d.type === "palette") {
      var s = svg(), r = s.getBoundingClientRect();
      if (evt.clientX >= r.left && evt.clientX <= r.right && evt.clientY >= r.top && evt.clientY <= r.bottom) {
        d.button.dataset.dropped = "1";
        var p = point(evt);
        addNode(d.nodeType, p.x - 88, p.y - 26, graphForNewNode(evt, p));
      }
    }
  });

  function addNode(type, x, y, graph) {
    var op = { op: "add_node", type: type, x: Math.round(x), y: Math.round(y), graph: graph || "" };
    if (type === "activity") { op.activity = root.querySelector("#palette-activity").value; }
    send([op], "Added a " + type + " node" + (graph ? " to " + graph : "") + ".");
  }

  root.querySelectorAll(".palette-item").forEach(function (button) {
    button.addEventListener("pointerdown", function (evt) {
      if (evt.button !== 0) { return; }
      drag = { type: "palette", nodeType: button.getAttribute("data-node-type"), button: button, moved: false };
    });
    button.addEventListener("click", function () {
      // A drop on the canvas already added it; a plain click (or Enter) adds it below the others.
      if (button.dataset.dropped) { delete button.dataset.dropped; return; }
      var bottom = 0, left = null;
      Object.keys(nodes).forEach(function (id) {
        var n = nodes[id];
        if (n.g.getAttribute("data-graph") !== "") { return; }
        bottom = Math.max(bottom, n.y + n.h);
        left = left === null ? n.x : Math.min(left, n.x);
      });
      addNode(button.getAttribute("data-node-type"), left === null ? 40 : left, bottom + 60, "");
    });
  });

  frame.addEventListener("dblclick", function (evt) {
    var node = evt.target.closest && evt.target.closest(".node");
    if (node) { window.location.href = nodeUrl + encodeURIComponent(node.getAttribute("data-node-id")); }
    var edge = evt.target.closest && evt.target.closest(".edge");
    if (edge) { select(edge); openLabel(); }
  });
  frame.addEventListener("focusin", function (evt) {
    var el = evt.target.closest && evt.target.closest(".node, .edge");
    if (el && !el.classList.contains("selected")) { select(el); }
  });
  frame.addEventListener("wheel", function (evt) {
    if (!svg()) { return; }
    evt.preventDefault();
    zoom(evt.deltaY > 0 ? 1.15 : 1 / 1.15, point(evt));
  }, { passive: false });

  function openLabel() {
    if (!selected || selected.kind !== "edge") { return; }
    labelForm.hidden = false;
    var input = labelForm.querySelector("input");
    input.value = selected.edgeKind === "case" && /^case \d+$/.test(selected.label) ? "" : selected.label;
    input.focus();
  }
  labelForm.addEventListener("submit", function (evt) {
    evt.preventDefault();
    if (!selected || selected.kind !== "edge") { return; }
    var label = labelForm.querySelector("input").value;
    labelForm.hidden = true;
    send([{ op: "label_edge", source: selected.source, target: selected.target, kind: selected.edgeKind, label: label }], "Labelled " + selected.source + " → " + selected.target + ".");
  });

  root.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-action]");
    if (!button || button.disabled) { return; }
    var action = button.getAttribute("data-action");
    if (action === "undo") { undo(); }
    else if (action === "redo") { redo(); }
    else if (action === "delete") { removeSelected(); }
    else if (action === "label") { openLabel(); }
    else if (action === "cancel-label") { labelForm.hidden = true; }
    else if (action === "zoom-in") { zoom(1 / 1.25); }
    else if (action === "zoom-out") { zoom(1.25); }
    else if (action === "fit") { fit(); }
  });

  document.addEventListener("keydown", function (evt) {
    var tag = (evt.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || evt.target.isContentEditable) { return; }
    var mod = evt.ctrlKey || evt.metaKey;
    if (mod && evt.key.toLowerCase() === "z") { evt.preventDefault(); if (evt.shiftKey) { redo(); } else { undo(); } }
    else if (mod && evt.key.toLowerCase() === "y") { evt.preventDefault(); redo(); }
    else if (selected && (evt.key === "Delete" || (evt.key === "Backspace" && root.contains(document.activeElement)))) { evt.preventDefault(); removeSelected(); }
    else if (evt.key === "Enter" && selected && selected.kind === "node" && frame.contains(evt.target)) { window.location.href = nodeUrl + encodeURIComponent(selected.id); }
    else if (evt.key === "Escape") { select(null); labelForm.hidden = true; }
    else if (selected && selected.kind === "node" && frame.contains(evt.target) && ARROWS[evt.key]) {
      // Arrow keys nudge the selected node (Shift: further); one change is saved when they stop.
      evt.preventDefault();
      var n = nodes[selected.id], step = evt.shiftKey ? 50 : 10;
      place(selected.id, n.x + ARROWS[evt.key][0] * step, n.y + ARROWS[evt.key][1] * step);
      var id = selected.id;
      clearTimeout(nudging);
      nudging = setTimeout(function () {
        var m = nodes[id];
        if (m) { send([{ op: "move_node", node: id, x: m.x, y: m.y }], "Moved " + id + "."); }
      }, 600);
    }
  });
  var ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  var nudging = null;

  index();
  root.classList.add("canvas-ready");
})();
