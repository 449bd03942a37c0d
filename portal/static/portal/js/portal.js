/* Cloud Licenses Portal: small progressive enhancements. Every page works without this file.
   Loaded as a static file because the Content-Security-Policy forbids inline script. */
(function () {
  "use strict";

  var root = document.documentElement;
  root.classList.remove("no-js");
  root.classList.add("js");

  function ready(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  /* Mobile navigation: the Menu button shows and hides the section list. */
  function setupNavToggles() {
    document.querySelectorAll("[data-nav-toggle]").forEach(function (button) {
      var target = document.getElementById(button.getAttribute("aria-controls"));
      if (!target) return;
      button.addEventListener("click", function () {
        var open = button.getAttribute("aria-expanded") === "true";
        button.setAttribute("aria-expanded", open ? "false" : "true");
        target.classList.toggle("is-open", !open);
        if (!open) {
          var first = target.querySelector("a[href]");
          if (first) first.focus();
        }
      });
      target.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && target.classList.contains("is-open")) {
          button.setAttribute("aria-expanded", "false");
          target.classList.remove("is-open");
          button.focus();
        }
      });
    });
  }

  /* <details> menus: close on outside click and on Escape, one open at a time. */
  function closeMenus(except) {
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }

  document.addEventListener("click", function (event) {
    var inside = event.target.closest ? event.target.closest("details[data-menu]") : null;
    closeMenus(inside);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details[data-menu][open]");
    if (open) {
      open.removeAttribute("open");
      var summary = open.querySelector("summary");
      if (summary) summary.focus();
    }
  });

  /* Confirmation dialog for forms marked data-confirm. Without JavaScript (or without
     <dialog> support) the form simply posts. Listening in the capture phase lets the dialog
     run before htmx sees the submit. */
  var pending = null;

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
      if (form.dataset.confirmed === "1") {
        delete form.dataset.confirmed;
        return;
      }
      var dialog = document.getElementById("confirm-dialog");
      if (!dialog || typeof dialog.showModal !== "function") return;
      event.preventDefault();
      event.stopImmediatePropagation();
      pending = { form: form, submitter: event.submitter || form.querySelector("[type=submit]") };
      dialog.querySelector("#confirm-dialog-message").textContent = form.getAttribute("data-confirm");
      var accept = dialog.querySelector("[data-confirm-accept]");
      accept.textContent = form.getAttribute("data-confirm-label") || "Confirm";
      accept.className = form.hasAttribute("data-confirm-danger") ? "btn btn-danger" : "btn btn-primary";
      dialog.returnValue = "";
      dialog.showModal();
      /* The safe choice has focus first, so Enter does not confirm a destructive action by accident. */
      dialog.querySelector("[data-confirm-cancel]").focus();
    },
    true
  );

  function setupConfirmDialog() {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog) return;
    dialog.addEventListener("close", function () {
      var action = pending;
      pending = null;
      if (!action) return;
      if (dialog.returnValue === "confirm") {
        action.form.dataset.confirmed = "1";
        if (typeof action.form.requestSubmit === "function") {
          action.form.requestSubmit(action.submitter || undefined);
        } else {
          action.form.submit();
        }
      } else if (action.submitter) {
        action.submitter.focus();
      }
    });
  }

  /* htmx: keep keyboard focus somewhere sensible when the element that had it was swapped
     out (sort links, pagination), and tell the user when a partial request failed. */
  document.addEventListener("htmx:afterSettle", function (event) {
    var active = document.activeElement;
    if (active && active !== document.body) return;
    var target = event.detail && event.detail.target;
    var region = target && target.id ? document.getElementById(target.id) : null;
    if (region) {
      if (!region.hasAttribute("tabindex")) region.setAttribute("tabindex", "-1");
      region.focus();
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail && event.detail.xhr ? event.detail.xhr.status : 0;
    showMessage(
      status === 403
        ? "You do not have permission to do that, or your session expired. Reload the page and try again."
        : "That did not work (error " + status + "). Reload the page and try again.",
      "error"
    );
  });

  document.addEventListener("htmx:sendError", function () {
    showMessage("The portal could not be reached. Check your connection and try again.", "error");
  });

  function showMessage(text, level) {
    var container = document.getElementById("messages");
    if (!container) return;
    var box = document.createElement("div");
    box.className = "message message-" + level;
    box.setAttribute("role", level === "error" ? "alert" : "status");
    var p = document.createElement("p");
    p.textContent = text;
    box.appendChild(p);
    container.appendChild(box);
  }

  ready(function () {
    setupNavToggles();
    setupConfirmDialog();
  });
})();
