// Compare page: "b" then a digit picks that column as the diff baseline (htmx link click).
(function () {
  "use strict";
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
})();
