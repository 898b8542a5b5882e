// Calculations pages: live progress on the detail page, analysis dependencies on the form.
// Plain JavaScript, no libraries; the pages work without it (the server checks everything again).
(function () {
  "use strict";

  // --- the analyses checkboxes: checking one checks what it needs; unchecking one unchecks
  // what needs it (the server applies the same rule and names any missing dependency).
  function analysisBoxes() {
    return Array.prototype.slice.call(document.querySelectorAll("input[type=checkbox][data-requires]"));
  }

  function requiresOf(box) {
    return (box.dataset.requires || "").split(" ").filter(Boolean);
  }

  function setChecked(id, checked, boxes, seen) {
    if (seen[id]) { return; }
    seen[id] = true;
    var box = boxes.filter(function (b) { return b.value === id; })[0];
    if (!box) { return; }
    box.checked = checked;
    if (checked) {
      requiresOf(box).forEach(function (needed) { setChecked(needed, true, boxes, seen); });
    } else {
      boxes.forEach(function (other) {
        if (requiresOf(other).indexOf(id) !== -1) { setChecked(other.value, false, boxes, seen); }
      });
    }
  }

  function wireAnalyses() {
    var boxes = analysisBoxes();
    boxes.forEach(function (box) {
      box.addEventListener("change", function () { setChecked(box.value, box.checked, boxes, {}); });
    });
  }

  // --- live progress: poll the JSON endpoint every ~2 s until the calculation is final.
  var POLL_MS = 2000;
  var MAX_TREND = 60;

  function lookup(data, path) {
    return path.split(".").reduce(function (value, key) {
      return value === null || value === undefined ? undefined : value[key];
    }, data);
  }

  function show(value) {
    if (value === null || value === undefined || value === "") { return "—"; }
    return String(value);
  }

  function drawTrend(svg, energies) {
    var line = svg.querySelector("polyline");
    if (energies.length < 2) { line.setAttribute("points", ""); return; }
    var low = Math.min.apply(null, energies), high = Math.max.apply(null, energies);
    var span = (high - low) || 1, step = 300 / (energies.length - 1);
    line.setAttribute("points", energies.map(function (e, i) {
      return (i * step).toFixed(1) + "," + (60 - (e - low) / span * 60).toFixed(1);
    }).join(" "));
  }

  function wireProgress() {
    var box = document.getElementById("progress");
    if (!box || box.dataset.terminal === "true") { return; }
    var energies = [], lastKey = null;
    var trend = document.getElementById("energy-trend");

    function apply(data) {
      document.querySelectorAll("[data-live]").forEach(function (el) {
        el.textContent = show(lookup(data, el.dataset.live));
      });
      document.querySelectorAll("[data-live-show]").forEach(function (el) {
        el.hidden = !lookup(data, el.dataset.liveShow);
      });
      var p = data.progress || {};
      var key = [data.step, p.geometry_step, p.scf_iteration].join("/");
      if (Array.isArray(p.trend)) {  // the server keeps the running cycle's energies
        energies = p.trend.map(function (point) { return point[1]; });
        if (trend) { drawTrend(trend, energies); }
      } else if (typeof p.energy === "number" && key !== lastKey) {
        lastKey = key;
        energies.push(p.energy);
        if (energies.length > MAX_TREND) { energies.shift(); }
        if (trend) { drawTrend(trend, energies); }
      }
      if (data.terminal) {
        document.getElementById("progress-finished").hidden = false;
        return false;
      }
      return true;
    }

    function poll() {
      if (document.hidden) { setTimeout(poll, POLL_MS); return; }
      fetch(box.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) { if (apply(data)) { setTimeout(poll, POLL_MS); } })
        .catch(function () { setTimeout(poll, POLL_MS * 5); });  // server away: try again later
    }
    setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireAnalyses();
    wireProgress();
  });
}());
