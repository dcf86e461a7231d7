// Refreshes the live part of a status page in place, without a full
// reload, so the page keeps its scroll position and the trace form keeps
// its input. When the server does not respond, the last figures stay and a
// notice shows since when they are old.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) {
    return;
  }
  var seconds = parseInt(live.getAttribute("data-refresh"), 10) || 5;
  var stale = document.getElementById("stale");
  var lastGood = new Date();

  function showStale(reason) {
    if (!stale) {
      return;
    }
    stale.textContent = "Cannot reach the server (" + reason + "); the figures below are from " +
      lastGood.toLocaleTimeString() + ".";
    stale.className = "stale shown";
  }

  function refresh() {
    fetch(window.location.pathname + window.location.search, {
      headers: { "X-Status-Fragment": "live" },
      cache: "no-store",
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.text();
    }).then(function (html) {
      live.innerHTML = html;
      lastGood = new Date();
      if (stale) {
        stale.className = "stale";
      }
    }).catch(function (err) {
      showStale(err.message);
    }).then(function () {
      window.setTimeout(refresh, seconds * 1000);
    });
  }

  window.setTimeout(refresh, seconds * 1000);
})();
