// The key page: copy buttons, and the agent's first heartbeat shown as soon as it arrives
// (the status endpoint is polled every 2 s; the page is never reloaded, so the key stays
// on screen while the operator sets the agent up).
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      var text = source.value !== undefined ? source.value : source.textContent;
      navigator.clipboard.writeText(text).then(function () {
        button.textContent = "Copied";
      }, function () {
        button.textContent = "Select and copy by hand";
      });
    });
  });

  var status = document.getElementById("agent-status");
  if (!status) return;
  var url = status.dataset.statusUrl;
  var timer = null;

  function show(data) {
    if (data.online) {
      status.textContent = "The agent is online" + (data.agent_version ? " (version " + data.agent_version + ")" : "") +
        ": its first heartbeat arrived " + Math.round(data.heartbeat_age) + " s ago.";
      status.className = "ok";
      window.clearInterval(timer);
    } else if (data.last_heartbeat_at) {
      status.textContent = "The agent was heard from " + Math.round(data.heartbeat_age) + " s ago but is silent now.";
    } else {
      status.textContent = "No heartbeat yet: start the agent. Checking every 2 seconds…";
    }
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(show)
      .catch(function () { status.textContent = "Cannot reach siestaflow; retrying…"; });
  }

  poll();
  timer = window.setInterval(poll, 2000);
})();

// Regions marked data-refresh="<seconds>" (the dashboard) keep themselves current: the page
// is fetched again and the region's content replaced by the fresh one, while the tab is
// visible. No reload, so the reader's scroll position stays.
(function () {
  "use strict";

  document.querySelectorAll("[data-refresh][id]").forEach(function (region) {
    var seconds = Math.max(5, Number(region.dataset.refresh) || 30);
    window.setInterval(function () {
      if (document.hidden) return;
      fetch(window.location.href, {credentials: "same-origin", headers: {Accept: "text/html"}})
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
          if (fresh) region.replaceChildren.apply(region, Array.from(fresh.childNodes));
        })
        .catch(function () { /* keep what is shown; the next round tries again */ });
    }, seconds * 1000);
  });
})();
