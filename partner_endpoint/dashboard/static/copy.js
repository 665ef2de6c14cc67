// The dashboard's only script: copy buttons on the page that shows a new key once.
// Without it (or without clipboard access) the buttons stay hidden and the values can be selected by hand.
(function () {
  "use strict";

  function announce(text) {
    var status = document.querySelector(".copy-status");
    if (status) {
      status.textContent = text;
    }
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function setUp(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) {
      return;
    }
    var title = document.getElementById(target.getAttribute("aria-labelledby"));
    var name = title ? title.textContent.trim() : "Value";
    button.setAttribute("aria-label", "Copy " + name);
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () {
          button.textContent = "Copied";
          button.classList.add("copied");
          announce(name + " copied to the clipboard.");
          window.setTimeout(function () {
            button.textContent = "Copy";
            button.classList.remove("copied");
          }, 2500);
        },
        function () {
          selectText(target);
          announce("Copying was blocked: the value is selected, press Ctrl+C (or Cmd+C) to copy it.");
        }
      );
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!navigator.clipboard || !window.isSecureContext) {
      return;
    }
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), setUp);
  });
})();
