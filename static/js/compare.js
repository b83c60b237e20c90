// Compare pages.
(function () {
  "use strict";

  // Detail page: "b" then a digit picks that column as the diff baseline (htmx link click).
  let pendingB = false;
  document.addEventListener("keydown", (event) => {
    const el = event.target;
    if (el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName))) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (pendingB && /^[1-8]$/.test(event.key)) {
      document.querySelectorAll(".baseline-picker a")[Number(event.key) - 1]?.click();
    }
    pendingB = event.key === "b";
  });

  // A baseline picked is the one "Run again" keeps, from the click on (the section's answer also
  // sets it, out of band; a "Run again" pressed before that answer arrives must not lose it).
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest(".baseline-picker a") : null;
    const field = document.getElementById("id_baseline");
    const number = link ? new URL(link.href, location.href).searchParams.get("baseline") : null;
    if (field && number) field.value = number;
  });

  // New-comparison form: after the column list is redrawn, the inputs follow it without being
  // redrawn (so nothing being typed is lost): shared variables shown or hidden, per-column
  // inputs put in the columns' order, a removed column's input dropped.
  function followColumns() {
    const rows = Array.from(document.querySelectorAll("#compare-columns [data-column-uid]"));
    const used = new Set(rows.flatMap((row) => (row.dataset.variables || "").split(" ").filter(Boolean)));
    document.querySelectorAll("#compare-inputs [data-variable]").forEach((field) => {
      field.hidden = !used.has(field.dataset.variable);
    });
    const box = document.getElementById("compare-input-groups");
    if (!box || !("perColumn" in box.dataset)) return;
    const order = rows.map((row) => row.dataset.columnUid);
    const groups = Array.from(box.children).filter((group) => group.dataset.columnUid);
    const active = document.activeElement;
    const selection = active && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
    groups.forEach((group) => { if (!order.includes(group.dataset.columnUid)) group.remove(); });
    let previous = null;
    order.forEach((uid, index) => {
      const group = groups.find((g) => g.dataset.columnUid === uid);
      if (!group || !group.isConnected) return;
      const number = group.querySelector("[data-column-number]");
      if (number) number.textContent = String(index + 1);
      const wanted = previous ? previous.nextElementSibling : box.firstElementChild;
      if (wanted !== group) box.insertBefore(group, wanted);
      previous = group;
    });
    // Moving an element blurs it: give the caret back to whoever was typing.
    if (active && active !== document.activeElement && box.contains(active)) {
      active.focus();
      if (selection) active.setSelectionRange(selection[0], selection[1]);
    }
  }

  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.target && event.target.id === "compare-columns") followColumns();
  });
})();
