// Copy button for a one-time secret: [data-copy-target] names the id of the input to copy.
(function () {
  "use strict";

  function announce(text) {
    var status = document.querySelector("[data-copy-status]");
    if (status) {
      status.textContent = text;
    }
  }

  function fallbackCopy(input) {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) {
      return;
    }
    var input = document.getElementById(button.getAttribute("data-copy-target"));
    if (!input) {
      return;
    }
    var copied = function () {
      button.textContent = "Copied";
      announce("The key was copied to the clipboard.");
    };
    var failed = function () {
      input.focus();
      input.select();
      announce("Copying failed. The key is selected: press Ctrl+C (or Cmd+C) to copy it.");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(copied, function () {
        if (fallbackCopy(input)) {
          copied();
        } else {
          failed();
        }
      });
    } else if (fallbackCopy(input)) {
      copied();
    } else {
      failed();
    }
  });
})();
