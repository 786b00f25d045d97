// Runs in <head> before the page paints, so the chosen theme never flashes.
(function () {
  "use strict";
  var stored = null;
  try { stored = window.localStorage.getItem("portal-theme"); } catch (e) { /* storage disabled */ }
  var preferred = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  document.documentElement.setAttribute("data-bs-theme", stored === "dark" || stored === "light" ? stored : preferred);
})();
