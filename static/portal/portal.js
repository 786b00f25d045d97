// Behaviour shared by every page: the theme toggle and self-submitting selects.
(function () {
  "use strict";

  function currentTheme() {
    return document.documentElement.getAttribute("data-bs-theme") === "dark" ? "dark" : "light";
  }

  function showTheme(toggle) {
    var dark = currentTheme() === "dark";
    toggle.setAttribute("aria-pressed", dark ? "true" : "false");
    var icon = toggle.querySelector(".bi");
    if (icon) {
      icon.className = "bi " + (dark ? "bi-sun" : "bi-moon-stars");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("theme-toggle");
    if (toggle) {
      showTheme(toggle);
      toggle.addEventListener("click", function () {
        var next = currentTheme() === "dark" ? "light" : "dark";
        document.documentElement.setAttribute("data-bs-theme", next);
        try { window.localStorage.setItem("portal-theme", next); } catch (e) { /* storage disabled */ }
        showTheme(toggle);
      });
    }
    // <select data-autosubmit> submits its form on change; the form keeps a visible button for
    // keyboard and no-JavaScript users.
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  });
})();
