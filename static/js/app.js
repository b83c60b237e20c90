// Small, page-wide behaviour: keyboard shortcuts. Pages add their own via data attributes.
(function () {
  "use strict";
  const dialog = () => document.getElementById("shortcuts");
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  let pendingG = false;

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-shortcuts-open]")) dialog()?.showModal();
  });

  document.addEventListener("keydown", (event) => {
    // Ctrl/Cmd+Enter submits the nearest form marked data-submit-shortcut (or the page's first).
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      const form = event.target.closest?.("form[data-submit-shortcut]") || document.querySelector("form[data-submit-shortcut]");
      if (form) {
        event.preventDefault();
        form.requestSubmit(form.querySelector("[data-shortcut-button]") || undefined);
      }
      return;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "?") {
      event.preventDefault();
      const d = dialog();
      if (d) d.open ? d.close() : d.showModal();
      return;
    }
    if (pendingG) {
      pendingG = false;
      const target = { w: "/", h: "/runs/", c: "/costs/" }[event.key];
      if (target) window.location.href = target;
      return;
    }
    if (event.key === "g") {
      pendingG = true;
      setTimeout(() => (pendingG = false), 1000);
    }
  });
})();
