// Small, page-wide behaviour: keyboard shortcuts. Pages add their own via data attributes.
(function () {
  "use strict";
  const dialog = () => document.getElementById("shortcuts");
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  let pendingG = false;
  let pendingB = false;

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-shortcuts-open]")) dialog()?.showModal();
    // "Keep editing" and the like: close the <details> that asked the question.
    const closer = event.target.closest("[data-close-details]");
    if (closer) {
      const details = closer.closest("details");
      if (details) {
        details.open = false;
        details.querySelector("summary")?.focus();
      }
    }
    // "Remove the batch filter" and the like: the filters as the form holds them now (updated in
    // place since the page was drawn), without the one named, with no empty or paging fields.
    const dropping = event.target.closest("a[data-drop-param]");
    const form = dropping?.closest("form");
    if (form) {
      const params = new URLSearchParams();
      for (const [name, value] of new FormData(form)) {
        if (value && !["before", "after", dropping.dataset.dropParam].includes(name)) params.append(name, value);
      }
      dropping.href = form.action + (params.size ? "?" + params : "");
    }
  });

  // A form answered with errors (marked data-first-error) brings its first error into view and
  // focuses it, even inside a separately scrolling column.
  function showFirstError() {
    const form = document.querySelector("[data-first-error]");
    if (!form) return;
    form.removeAttribute("data-first-error");
    // A field's own error first; else a message about the whole form (Maxim refused, another tab).
    const first = form.querySelector('[aria-invalid="true"], .has-error, [role="alert"] .errorlist') || form.querySelector('[role="alert"]');
    if (!first) return;
    const control = first.matches("input, select, textarea") ? first : first.closest(".field, fieldset")?.querySelector("input:not([type=hidden]), select, textarea");
    first.scrollIntoView({ block: "center" });
    control?.focus({ preventScroll: true });
  }
  document.addEventListener("htmx:afterSettle", showFirstError);
  showFirstError();

  // A note that means something only on a page whose address filters or sorts (data-if-filtered: the
  // query parameters that do) is shown there, hidden elsewhere.
  function showIfFiltered() {
    const query = new URLSearchParams(location.search);
    document.querySelectorAll("[data-if-filtered]").forEach((note) => {
      note.hidden = !note.dataset.ifFiltered.split(" ").some((name) => query.get(name));
    });
  }
  document.addEventListener("htmx:afterSettle", showIfFiltered);
  showIfFiltered();

  // A card that stays in sight as the page scrolls (data-stays-in-sight: the builder's actions) covers
  // what scrolls under it; a control focused there (Shift+Tab up the model column) is scrolled out from
  // under it. The browser does not: the control is inside the window, so it is "in view" already.
  document.addEventListener("focusin", (event) => {
    const card = document.querySelector("[data-stays-in-sight]");
    if (!card || card.contains(event.target) || getComputedStyle(card).position !== "sticky") return;
    const c = card.getBoundingClientRect();
    const f = event.target.getBoundingClientRect();
    if (f.right > c.left && f.left < c.right && f.top < c.bottom && f.bottom > c.top) window.scrollBy(0, f.top - c.bottom - 8);
  });

  // A run that went through makes every field error left from a refused one stale: clear them
  // (marked data-clear-errors on the new result) and the fields' invalid state with them.
  document.addEventListener("htmx:afterSettle", () => {
    const marker = document.querySelector("[data-clear-errors]");
    if (!marker) return;
    const form = document.getElementById(marker.getAttribute("data-clear-errors"));
    marker.removeAttribute("data-clear-errors");
    form?.querySelectorAll(".errorlist").forEach((list) => list.remove());
    form?.querySelectorAll('[aria-invalid="true"]').forEach((field) => field.removeAttribute("aria-invalid"));
  });

  // What a page said on arriving ("Draft discarded.", "Restored your unsaved draft…") is news
  // until the person starts typing; after that it only sits beside newer messages (new-user
  // trial: "Draft discarded." stayed through a Check and eighteen edits). Errors stay.
  document.addEventListener("input", (event) => {
    if (!event.target.closest?.("form")) return;
    document.querySelectorAll('#flash .flash-success, #flash .flash-info, #draft-restored').forEach((note) => note.remove());
  }, { once: true });

  // The builder's autosave, while Create's or Check's errors are shown, lists the fields that
  // have one now (data-still-invalid on the banner it updates) with their error lists as the
  // server rendered them (template#builder-recheck): the errors of the other fields are stale
  // and go; each listed field shows its errors as they are now, where the page shows the field.
  function describedBy(control, id, add) {
    const refs = (control.getAttribute("aria-describedby") || "").split(" ").filter((ref) => ref && ref !== id);
    if (add) refs.push(id);
    refs.length ? control.setAttribute("aria-describedby", refs.join(" ")) : control.removeAttribute("aria-describedby");
  }
  document.addEventListener("htmx:afterSettle", () => {
    const banner = document.querySelector("[data-still-invalid]");
    const form = banner?.closest("form");
    if (!form) return;
    const still = new Set(banner.getAttribute("data-still-invalid").split(" ").filter(Boolean));
    const wholeForm = banner.hasAttribute("data-whole-form-errors");  // errors of no one field still hold
    banner.removeAttribute("data-still-invalid");
    banner.removeAttribute("data-whole-form-errors");
    form.querySelectorAll('.errorlist[id$="_error"]').forEach((list) => {
      const id = list.id.slice(0, -"_error".length);
      if (still.has(id)) return;
      const alert = list.closest('[role="alert"]');
      list.closest(".has-error")?.classList.remove("has-error");
      list.remove();
      if (alert && !alert.querySelector(".errorlist")) alert.remove();
      const control = document.getElementById(id);
      if (control) {
        control.removeAttribute("aria-invalid");
        describedBy(control, list.id, false);
      }
    });
    const fresh = document.getElementById("builder-recheck");
    fresh?.content.querySelectorAll("[data-errors-for]").forEach((holder) => {
      const id = holder.getAttribute("data-errors-for");
      const control = document.getElementById(id);
      const list = holder.querySelector(".errorlist");
      if (!list || !control || control.type === "hidden" || !form.contains(control)) return;
      const shown = document.getElementById(list.id);
      if (shown) {
        shown.replaceWith(list);
      } else {
        const alert = document.createElement("div");
        alert.setAttribute("role", "alert");
        alert.append(list);
        const field = control.closest(".field");
        if (field) {
          field.append(alert);
          field.classList.add("has-error");
        } else {
          control.after(alert);
        }
      }
      control.setAttribute("aria-invalid", "true");
      describedBy(control, list.id, true);
    });
    fresh?.remove();
    if (still.size === 0 && !wholeForm) {  // errors of no one field (a row's own...) are gone with the rest
      form.querySelectorAll(".errorlist").forEach((list) => {
        const alert = list.closest('[role="alert"]');
        list.remove();
        if (alert && !alert.querySelector(".errorlist") && !alert.id) alert.remove();
      });
    }
  });

  // A page's held request (data-watch-retry) that failed, a server restarting or a lost
  // connection, asks again after a growing pause instead of ending the page's live updates
  // without a word; the note it names says so until an answer comes.
  function retryWatch(event) {
    const watch = event.detail.elt;
    if (!watch?.hasAttribute?.("data-watch-retry")) return;
    const pause = Math.min(30000, 2 * (Number(watch.dataset.retryPause) || 500));
    watch.dataset.retryPause = String(pause);
    const note = document.getElementById(watch.getAttribute("data-watch-retry"));
    if (note) {
      note.textContent = `Live updates lost the server; trying again in ${Math.round(pause / 1000)} s. Reloading the page also shows the latest.`;
      note.hidden = false;
    }
    setTimeout(() => watch.isConnected && htmx.trigger(watch, "watch-retry"), pause);
  }
  document.addEventListener("htmx:responseError", retryWatch);
  document.addEventListener("htmx:sendError", retryWatch);

  document.addEventListener("keydown", (event) => {
    // Ctrl/Cmd+Enter submits the nearest form marked data-submit-shortcut (or the page's first).
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      const form = event.target.closest?.("form[data-submit-shortcut]") || document.querySelector("form[data-submit-shortcut]");
      if (form) {
        event.preventDefault();
        // A click, not requestSubmit(button): htmx takes the submitter (its name=value,
        // e.g. action=create) only from a click, and a disabled button ignores it.
        const button = form.querySelector("[data-shortcut-button]");
        if (button) button.click();
        else form.requestSubmit();
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
    // "b" then a digit: that column is the baseline; on a batch's page its "Baseline column"
    // choice (compare.js does the comparison pages).
    const batchBaseline = document.getElementById("batch-baseline");
    if (pendingB && batchBaseline && /^[1-8]$/.test(event.key)) {
      pendingB = false;
      const option = batchBaseline.options[Number(event.key) - 1];
      if (option && !option.selected) {
        batchBaseline.value = option.value;
        batchBaseline.dispatchEvent(new Event("change", { bubbles: true }));
      }
      return;
    }
    pendingB = event.key === "b";
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
