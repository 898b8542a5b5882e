// Resource graphs of a cluster: CPU, memory and free disk over a chosen window, drawn as
// plain SVG line charts from the cluster API's resources endpoint (at most a few hundred
// points, bucketed by the server). No library: the site works without internet.
(function () {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";
  var W = 640, H = 170, PAD = {l: 64, r: 10, t: 10, b: 24};
  var METRICS = [
    {key: "cpu_percent", title: "CPU", percent: true},
    {key: "memory_percent", title: "Memory", percent: true},
    {key: "disk_free", title: "Disk free", percent: false}
  ];

  function svg(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function bytes(v) {
    var units = ["B", "kB", "MB", "GB", "TB", "PB"], i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return v.toFixed(v < 10 && i ? 1 : 0) + " " + units[i];
  }

  function value(metric, v) { return metric.percent ? v.toFixed(0) + " %" : bytes(v); }

  function when(ms, span) {
    var d = new Date(ms), time = {hour: "2-digit", minute: "2-digit"};
    if (span < 12 * 3600e3) return d.toLocaleTimeString([], time);
    if (span <= 2 * 86400e3) return d.toLocaleString([], Object.assign({month: "short", day: "numeric"}, time));
    return d.toLocaleDateString();
  }

  function label(parent, x, y, text, anchor) {
    svg("text", {x: x, y: y, "text-anchor": anchor || "end", "class": "chart-label"}, parent).textContent = text;
  }

  // One chart. The line breaks where the agent was silent: a gap longer than two steps and
  // longer than the silence that makes a cluster offline (``silence`` seconds).
  function draw(metric, series, silence) {
    var t0 = Date.parse(series.start), t1 = Date.parse(series.end), span = t1 - t0;
    var points = series.points.filter(function (p) { return p[metric.key] !== null; });
    var values = points.map(function (p) { return p[metric.key]; });
    var top = metric.percent ? 100 : Math.max.apply(null, values.concat([1])) * 1.1;
    var x = function (ms) { return PAD.l + (ms - t0) / span * (W - PAD.l - PAD.r); };
    var y = function (v) { return H - PAD.b - v / top * (H - PAD.t - PAD.b); };
    var figure = document.createElement("figure");
    var caption = document.createElement("figcaption");
    var latest = values.length ? value(metric, values[values.length - 1]) : "no data";
    caption.textContent = metric.title + " — latest " + latest;
    figure.appendChild(caption);
    var chart = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "class": "chart",
      "aria-label": metric.title + " over the window: " + (values.length ? "latest " + latest + ", highest " +
        value(metric, Math.max.apply(null, values)) : "no data")}, figure);
    [0, 0.5, 1].forEach(function (f) {
      svg("line", {x1: PAD.l, x2: W - PAD.r, y1: y(top * f), y2: y(top * f), "class": "chart-grid"}, chart);
      label(chart, PAD.l - 6, y(top * f) + 4, value(metric, top * f));
    });
    label(chart, PAD.l, H - 6, when(t0, span), "start");
    label(chart, W - PAD.r, H - 6, when(t1, span), "end");
    var d = "", last = null;
    points.forEach(function (p) {
      var ms = Date.parse(p.time);
      d += (last === null || ms - last > Math.max(2 * series.step, silence) * 1000 ? "M" : "L") + x(ms).toFixed(1) + " " +
        y(p[metric.key]).toFixed(1) + " ";
      last = ms;
    });
    if (d) svg("path", {d: d, "class": "chart-line"}, chart);
    else label(chart, W / 2, H / 2, "No heartbeats in this window", "middle");
    return figure;
  }

  function load(section, windowName) {
    var status = section.querySelector("[data-chart-status]");
    var charts = section.querySelector("[data-charts]");
    status.textContent = "Loading the last " + windowName + "…";
    fetch(section.dataset.url + "?window=" + encodeURIComponent(windowName),
      {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (series) {
        var silence = Number(section.dataset.silence) || 0;
        charts.replaceChildren.apply(charts, METRICS.map(function (m) { return draw(m, series, silence); }));
        status.textContent = series.points.length + " points, one per " + series.step + " s (" +
          series.resolution + ").";
      })
      .catch(function (e) { status.textContent = "Could not load the graphs (" + e.message + ")."; });
  }

  document.querySelectorAll("[data-resource-chart]").forEach(function (section) {
    var checked = section.querySelector("input[name=window]:checked");
    section.querySelectorAll("input[name=window]").forEach(function (input) {
      input.addEventListener("change", function () { load(section, input.value); });
    });
    load(section, checked ? checked.value : "hour");
  });
})();
