// Live traffic figures: during a rotation, the old key's last request and its requests in the last
// hour, so its owner can watch them reach zero. Each [data-traffic] element names its key's JSON
// (GET /dashboard/keys/ID/traffic) and how often to read it (data-every, seconds). Without this
// script the figures the server rendered stand.
//
// It reads only while the page is shown, and stops after 30 minutes without a key press or click,
// so a tab left open does not keep its session alive for ever.
(function () {
  "use strict";

  var IDLE_LIMIT = 30 * 60 * 1000;

  function show(element, name, text) {
    var field = element.querySelector('[data-live="' + name + '"]');
    if (field && field.textContent !== text) {
      field.textContent = text;
    }
  }

  function note(element, text) {
    var field = element.querySelector(".live-note");
    if (field) {
      field.textContent = text;
      field.hidden = false;
    }
  }

  function follow(element) {
    var url = element.getAttribute("data-traffic");
    var every = Math.max(2, parseInt(element.getAttribute("data-every"), 10) || 10) * 1000;
    var lastInput = Date.now();
    var timer = null;

    function stop(text) {
      window.clearInterval(timer);
      timer = null;
      note(element, text);
    }

    function read() {
      if (document.hidden) {
        return;
      }
      if (Date.now() - lastInput > IDLE_LIMIT) {
        stop("Reload the page to update these figures.");
        return;
      }
      window
        .fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          if (!response.ok || type.indexOf("application/json") !== 0) {
            // Deleted, or the session ended (a redirect to sign-in): keep what is shown.
            stop("Reload the page to update these figures.");
            return null;
          }
          return response.json();
        })
        .then(function (data) {
          if (data) {
            show(element, "last_used", data.last_used);
            show(element, "last_hour", data.last_hour.toLocaleString("en-US"));
          }
        })
        .catch(function () {
          // A network error: try again at the next tick.
        });
    }

    ["keydown", "pointerdown"].forEach(function (name) {
      document.addEventListener(name, function () {
        lastInput = Date.now();
      });
    });
    note(element, "Updated every " + every / 1000 + " seconds.");
    timer = window.setInterval(read, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.fetch) {
      return;
    }
    Array.prototype.forEach.call(document.querySelectorAll("[data-traffic]"), follow);
  });
})();
