// Loaded into every page of bench/bench_browser_compare.py (Playwright's add_init_script, which the page's
// CSP does not govern). It notes, in wall-clock ms since the epoch (the clock of Python's time.time()), the
// last pointer press and, for each watched [selector, count], the first frame painted after 1, 2 ... count
// elements matched. Kept in sessionStorage: a comparison's press and its columns are on two documents.
// Why not Playwright's wait_for: it polls at 0, 20, 50, 100, 100 and then every 500 ms, so a result that
// comes after a second is seen up to half a second late.
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const read = (key, empty) => JSON.parse(sessionStorage.getItem(key) || empty);
  document.addEventListener("pointerdown", (event) => {
    sessionStorage.setItem("benchPressed", JSON.stringify(performance.timeOrigin + event.timeStamp));
    sessionStorage.setItem("benchSeen", "{}");
  }, true);
  const counted = {};  // selector -> matches already given a frame, on this document
  const look = () => {
    for (const [selector, wanted] of read("benchWatch", "[]")) {
      const found = Math.min(document.querySelectorAll(selector).length, wanted);
      const before = counted[selector] || 0;
      if (found <= before) continue;
      counted[selector] = found;
      requestAnimationFrame(() => {
        const seen = read("benchSeen", "{}");
        const times = seen[selector] || [];
        while (times.length < found) times.push(now());
        seen[selector] = times;
        sessionStorage.setItem("benchSeen", JSON.stringify(seen));
      });
    }
  };
  new MutationObserver(look).observe(document, { childList: true, subtree: true, characterData: true });
})();
