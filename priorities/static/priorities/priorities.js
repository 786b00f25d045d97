// GPU priority pages: the policy tooltip, the form's per-type GPU limit, copy buttons, delete confirmation.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    if (window.bootstrap) {
      document.querySelectorAll('[data-bs-toggle="tooltip"]').forEach(function (el) {
        new window.bootstrap.Tooltip(el);
      });
    }
    // Mirror the server's per-request GPU limit of the chosen type on the count field.
    var limitsNode = document.getElementById("priority-limits");
    var typeSelect = document.getElementById("id_gpu_type");
    var count = document.getElementById("id_gpu_count");
    if (limitsNode && typeSelect && count) {
      var limits = JSON.parse(limitsNode.textContent);
      var update = function () {
        var limit = limits[typeSelect.value];
        if (limit && limit.request) {
          count.max = String(limit.request);
        } else {
          count.removeAttribute("max");
        }
      };
      typeSelect.addEventListener("change", update);
      update();
    }
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        if (source && navigator.clipboard) {
          navigator.clipboard.writeText(source.textContent.trim());
        }
      });
    });
    document.querySelectorAll("[data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  });
})();
