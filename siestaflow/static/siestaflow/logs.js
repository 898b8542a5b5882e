// The live feed of the Logs page: polls the JSON feed for lines after the newest one shown
// (with the page's filters) and appends them. Log text only ever goes in via textContent.
(function () {
  "use strict";
  var INTERVAL = 1000; // ms: new lines show within 2 s, even on a busy server
  var MAX_ROWS = 2000; // older rows leave the page so a long session stays light
  var table = document.getElementById("log-lines");
  if (!table || table.dataset.live !== "true") { return; }
  var body = table.tBodies[0];
  var box = table.closest(".log-box") || document.documentElement;
  var status = document.getElementById("log-status");
  var pause = document.getElementById("log-pause");
  var last = Number(table.dataset.last) || 0;
  var paused = false;
  var timer = null;

  function cell(row, text) {
    var td = row.insertCell();
    if (text !== undefined) { td.textContent = text; }
    return td;
  }

  function render(line) {
    var row = document.createElement("tr");
    row.dataset.id = line.id;
    row.className = "level-" + line.level;
    var time = document.createElement("time");
    time.dateTime = line.time;
    time.textContent = line.time_display;
    cell(row).appendChild(time);
    var level = document.createElement("span");
    level.className = "log-level";
    level.textContent = line.level;
    cell(row).appendChild(level);
    cell(row, line.cluster);
    var where = cell(row);
    if (line.calculation) {
      var link = document.createElement("a");
      link.href = "?calculation=" + encodeURIComponent(line.calculation);
      link.title = "Only this calculation's lines";
      link.textContent = "#" + line.calculation + " " + line.calculation_name;
      where.appendChild(link);
      if (line.attempt) {
        var attempt = document.createElement("span");
        attempt.className = "help";
        attempt.textContent = " (attempt " + line.attempt + ")";
        where.appendChild(attempt);
      }
    } else {
      var agent = document.createElement("span");
      agent.className = "help";
      agent.textContent = "agent";
      where.appendChild(agent);
    }
    cell(row, line.message).className = "log-message";
    return row;
  }

  function atBottom() {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }

  function append(lines) {
    if (!lines.length) { return; }
    var follow = atBottom();
    var empty = document.getElementById("log-empty");
    if (empty) { empty.remove(); }
    lines.forEach(function (line) {
      if (line.id > last) { body.appendChild(render(line)); last = line.id; }
    });
    while (body.rows.length > MAX_ROWS) { body.deleteRow(0); }
    if (follow) { box.scrollTop = box.scrollHeight; }
    say("Live: " + lines.length + " new line" + (lines.length === 1 ? "" : "s") + " at " +
        new Date().toLocaleTimeString() + ".");
  }

  function say(text) { if (status) { status.textContent = text; } }

  function schedule(delay) {
    clearTimeout(timer);
    if (!paused) { timer = setTimeout(poll, delay); }
  }

  function poll() {
    var url = new URL(table.dataset.feed, window.location.href);
    url.searchParams.set("after", String(last));
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.redirected) { throw new Error("signed out"); }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        append(data.lines);
        schedule(data.more ? 0 : INTERVAL);
      })
      .catch(function (error) {
        say(error.message === "signed out" ? "Live feed stopped: you are signed out. Reload the page."
          : "Live feed interrupted (" + error.message + "); retrying.");
        if (error.message !== "signed out") { schedule(INTERVAL * 4); }
      });
  }

  if (pause) {
    pause.addEventListener("click", function () {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = paused ? "Resume" : "Pause";
      say(paused ? "Paused: new lines are not fetched." : "Live: new lines appear automatically.");
      schedule(0);
    });
  }
  box.scrollTop = box.scrollHeight;
  schedule(INTERVAL);
}());
