// Pilotplan's own JavaScript: only what HTMX attributes cannot say. Every flow works without it.
// No inline scripts or handlers anywhere: behaviour is attached here, so a strict
// Content-Security-Policy (script-src 'self') holds.
(function () {
  "use strict";

  var TOAST_MS = 6000;

  // A toast: a short message about what just happened, announced by the live region #toasts
  // (base.html). Text only (textContent), so a message can never inject markup.
  function showToast(message, level) {
    var region = document.getElementById("toasts");
    if (!region || !message) return;
    var toast = document.createElement("div");
    toast.className = "toast toast-" + (level || "success");
    toast.dataset.testid = "toast";
    var text = document.createElement("span");
    text.className = "toast-text";
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { dismiss(toast); });
    toast.append(text, close);
    region.append(toast);
    // Errors stay until dismissed: they ask the reader to do something.
    if (level !== "error") window.setTimeout(function () { dismiss(toast); }, TOAST_MS);
  }

  function dismiss(toast) {
    if (!toast.isConnected) return;
    toast.classList.add("leaving");
    window.setTimeout(function () { toast.remove(); }, 200);
  }

  // A view asks for a toast with HX-Trigger: {"showToast": {"message": "…", "level": "success"}}
  // (accounts.ui.toast); htmx dispatches it on the requesting element, it bubbles here.
  document.addEventListener("showToast", function (event) {
    var detail = event.detail || {};
    showToast(detail.message || detail.value, detail.level);
  });

  document.addEventListener("htmx:responseError", function (event) {
    // A refusal that says why (HX-Trigger showToast, e.g. a read-only plan) has shown its toast.
    if ((event.detail.xhr.getResponseHeader("HX-Trigger") || "").indexOf("showToast") !== -1) return;
    var status = event.detail.xhr.status;
    var message = status === 403 ? "You may not do that."
      : status === 404 ? "That no longer exists; reload the page."
      : "Something went wrong; nothing was saved. Please reload the page.";
    showToast(message, "error");
  });

  document.addEventListener("htmx:sendError", function () {
    showToast("The server could not be reached; nothing was saved. Check the connection and try again.", "error");
  });

  // A row list refreshes when another list (or the fields) of its section changed: planChanged
  // ({"section": …, "list": …}) becomes sectionListsChanged on each such list. (An hx-trigger
  // filter would say the same, but htmx evaluates filters with eval, which CSP forbids.)
  document.body.addEventListener("planChanged", function (event) {
    var detail = event.detail || {};
    document.querySelectorAll(".row-list[data-section]").forEach(function (list) {
      if (list.dataset.section === detail.section && list.dataset.list !== detail.list) {
        htmx.trigger(list, "sectionListsChanged");
      }
    });
  });

  // Buttons that print the page (the printable plan): data-action="print".
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target.closest("[data-action=print]") : null;
    if (target) window.print();
  });

  // The decision record form (decisions/_decision_record_form.html): choosing an outcome other
  // than the recommendation (data-recommendation) marks the override reason required and says
  // why. The server enforces it either way (decision_record); this only says it sooner.
  function overrideHint(form) {
    var chosen = form.querySelector("input[name=outcome]:checked");
    var needed = Boolean(chosen && chosen.value !== form.dataset.recommendation);
    form.classList.toggle("override-needed", needed);
    var reason = form.querySelector("textarea[name=override_reason]");
    if (reason) {
      reason.required = needed;
      reason.setAttribute("aria-required", needed ? "true" : "false");
    }
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.name === "outcome") {
      var form = target.closest("form[data-recommendation]");
      if (form) overrideHint(form);
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-recommendation]").forEach(overrideHint);
  });

  // Printing opens every <details> (the decision page's rules table), and closes them again after.
  var openedForPrint = [];
  window.addEventListener("beforeprint", function () {
    openedForPrint = Array.from(document.querySelectorAll("details:not([open])"));
    openedForPrint.forEach(function (details) { details.open = true; });
  });
  window.addEventListener("afterprint", function () {
    openedForPrint.forEach(function (details) { details.open = false; });
    openedForPrint = [];
  });

  // Focus after an HTMX swap. When the swap replaced the element that had focus (an Edit button,
  // a Save form), the browser drops focus to <body> and a keyboard user starts again from the
  // top. The new content names where focus belongs with [data-focus-after-swap]: a form or
  // container hands it to its first field, a heading takes it itself (tabindex -1, so it is
  // not added to the tab order). Focus that is still somewhere on the page is left alone.
  var FIELDS = "input:not([type=hidden]):not([disabled]), select:not([disabled]), " +
    "textarea:not([disabled]), button:not([disabled]), [href], [tabindex]:not([tabindex='-1'])";

  document.addEventListener("htmx:afterSettle", function (event) {
    var root = event.target;
    if (!(root instanceof Element) || !root.isConnected) return;
    var active = document.activeElement;
    if (active && active !== document.body && active.isConnected) return;
    var mark = root.matches("[data-focus-after-swap]") ? root : root.querySelector("[data-focus-after-swap]");
    if (!mark) return;
    var target = mark.matches("form, fieldset, div, section, article") ? mark.querySelector(FIELDS) : mark;
    if (!target) return;
    if (!target.matches(FIELDS)) target.setAttribute("tabindex", "-1");
    target.focus();
  });

  // The plan document's sections fold away (pilots/sections/_header.html): the toggle button
  // says its state in aria-expanded; CSS hides everything of a folded section but its header.
  // Following a link to a folded section (the section index) unfolds it. Not kept across loads.
  function setFolded(section, folded) {
    section.classList.toggle("folded", folded);
    var toggle = section.querySelector(".section-toggle");
    if (toggle) toggle.setAttribute("aria-expanded", folded ? "false" : "true");
  }
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var toggle = target && target.closest(".section-toggle");
    if (toggle) {
      var section = toggle.closest(".plan-section");
      if (section) setFolded(section, !section.classList.contains("folded"));
      return;
    }
    var link = target && target.closest("a[href^='#section-']");
    if (link) {
      var folded = document.getElementById(link.getAttribute("href").slice(1));
      if (folded && folded.classList.contains("folded")) setFolded(folded, false);
    }
  });

  // The plan header's lifecycle steps (pilots/review/lifecycle.html#header) open in place:
  // Escape closes the open one and gives the focus back to its button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".step-menu[open]") : null;
    if (open) {
      open.open = false;
      var summary = open.querySelector("summary");
      if (summary) summary.focus();
    }
  });

  // The phone menu (a CSS checkbox toggle) also closes with Escape.
  document.addEventListener("keydown", function (event) {
    var toggle = document.getElementById("nav-toggle");
    if (event.key === "Escape" && toggle && toggle.checked) {
      toggle.checked = false;
      toggle.focus();
    }
  });
})();

// A plan's tabs scroll sideways on a phone: bring the current one into view.
document.addEventListener("DOMContentLoaded", function () {
  var current = document.querySelector(".tabs [aria-current=page]");
  var tabs = current && current.parentElement;
  if (tabs && tabs.scrollWidth > tabs.clientWidth) {
    var offset = current.getBoundingClientRect().left - tabs.getBoundingClientRect().left;
    tabs.scrollLeft += offset - (tabs.clientWidth - current.offsetWidth) / 2;
  }
});
