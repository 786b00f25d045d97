// The user page's jobs table: DataTables, server side, on /api/jobs/?format=datatables.
// The first page is rendered by the server (it works without JavaScript); DataTables takes
// over from there (deferLoading). Configuration comes from a json_script element.
(function () {
  "use strict";

  function escapeHtml(text) {
    return String(text === null || text === undefined ? "" : text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  // DataTables' request object to its bracketed query parameters (columns[0][data]=...).
  function flatten(value, prefix, out) {
    if (value === null || value === undefined) {
      return out;
    }
    if (typeof value === "object") {
      Object.keys(value).forEach(function (key) {
        flatten(value[key], prefix ? prefix + "[" + key + "]" : key, out);
      });
    } else {
      out.append(prefix, String(value));
    }
    return out;
  }

  function when(iso) {
    if (iso && !/^\d{4}-\d\d-\d\dT/.test(iso)) { return iso; }  // a cell read from the page
    return iso ? '<time datetime="' + escapeHtml(iso) + '">' + escapeHtml(iso.slice(0, 16).replace("T", " ")) + "</time>" : "";
  }

  function duration(minutes, unlimited) {
    if (typeof minutes === "string") { return minutes; }  // a cell read from the page
    if (minutes === null || minutes === undefined) {
      return escapeHtml(unlimited);
    }
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var mins = minutes % 60;
    var clock = String(hours).padStart(2, "0") + ":" + String(mins).padStart(2, "0") + ":00";
    return days ? days + "-" + clock : clock;
  }

  function badgeClass(state) {
    if (state === "COMPLETED") { return "text-bg-success"; }
    if (state === "RUNNING" || state === "COMPLETING") { return "text-bg-primary"; }
    if (state === "PENDING") { return "text-bg-secondary"; }
    if (state === "CANCELLED") { return "text-bg-warning"; }
    return "text-bg-danger";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("jobs-table");
    var configElement = document.getElementById("jobs-table-config");
    if (!table || !configElement || typeof DataTable === "undefined") {
      return;
    }
    var config = JSON.parse(configElement.textContent);
    var form = document.getElementById("jobs-filters");
    var errorBox = document.getElementById("jobs-error");
    var everyone = document.getElementById("filter-everyone");
    var account = document.getElementById("filter-account");
    DataTable.ext.errMode = "none";

    function filters() {
      var params = {};
      ["state", "account", "partition", "submitted_after", "submitted_before"].forEach(function (name) {
        var field = form.elements.namedItem(name);
        if (field && field.value) {
          params[name] = field.value;
        }
      });
      if (!(params.account && everyone.checked)) {
        params.username = config.username;
      }
      return params;
    }

    function showError(body) {
      var reason = body && body.detail ? body.detail : "";
      if (!reason && body && typeof body === "object") {
        reason = Object.keys(body).map(function (key) {
          return key + ": " + [].concat(body[key]).join(" ");
        }).join("; ");
      }
      errorBox.textContent = config.error.replace("%(reason)s", reason || "?");
      errorBox.classList.remove("d-none");
    }

    var canOpen = function (row) {
      return config.staff || row.username === config.viewer || (!row.username && config.username === config.viewer);
    };

    var dataTable = new DataTable(table, {
      serverSide: true,
      processing: true,
      deferLoading: config.total,
      pageLength: config.pageLength,
      lengthMenu: [10, 50, 100, 1000],
      order: [[7, "desc"]],
      searchDelay: 400,
      autoWidth: false,
      language: config.language,
      ajax: function (data, callback) {
        var params = flatten(data, "", new URLSearchParams());
        params.set("format", "datatables");
        var extra = filters();
        Object.keys(extra).forEach(function (key) { params.set(key, extra[key]); });
        fetch(config.api + "?" + params.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (response) {
            return response.json().then(function (body) { return { ok: response.ok, body: body }; });
          })
          .then(function (answer) {
            if (!answer.ok) {
              showError(answer.body);
              callback({ draw: data.draw, recordsTotal: 0, recordsFiltered: 0, data: [] });
              return;
            }
            errorBox.classList.add("d-none");
            callback(answer.body);
          })
          .catch(function (error) {
            showError({ detail: String(error) });
            callback({ draw: data.draw, recordsTotal: 0, recordsFiltered: 0, data: [] });
          });
      },
      columns: [
        {
          data: "id_job",
          render: function (value, type, row) {
            if (type !== "display" || row.display_id === undefined) { return value; }  // rows read from the page
            var label = escapeHtml(row.display_id);
            if (!canOpen(row)) { return label; }
            var owner = row.username || config.username;
            return '<a href="' + escapeHtml(config.jobsUrl + encodeURIComponent(owner) + "/" + row.id_job + "/") + '">' + label + "</a>";
          }
        },
        { data: "job_name", render: DataTable.render.text(), className: "text-break" },
        { data: "username", render: DataTable.render.text(), orderable: false, visible: false },
        { data: "account", render: DataTable.render.text() },
        { data: "partition", render: DataTable.render.text() },
        {
          data: "get_state_display",
          name: "state",
          render: function (value, type, row) {
            if (type !== "display" || row.state === undefined) { return value; }
            return '<span class="badge state-badge ' + badgeClass(row.state) + '">' + escapeHtml(value) + "</span>";
          }
        },
        { data: "time_submit", render: function (v, type) { return type === "display" ? when(v) : v; } },
        { data: "time_start", render: function (v, type) { return type === "display" ? when(v) : v; } },
        { data: "time_end", render: function (v, type) { return type === "display" ? when(v) : v; } },
        { data: "timelimit", render: function (v, type) { return type === "display" ? duration(v, config.unlimited) : v; } },
        {
          data: "nodes",
          render: function (v, type) {
            if (type !== "display" || !Array.isArray(v)) { return v; }
            var nodes = v;
            return '<span title="' + escapeHtml(nodes.join(", ")) + '">' + nodes.length + "</span>";
          }
        }
      ]
    });

    var pages = document.getElementById("jobs-pages");
    if (pages) {
      pages.hidden = true;
    }

    function refresh() {
      var showUsers = Boolean(account.value && everyone.checked);
      dataTable.column(2).visible(showUsers);
      dataTable.ajax.reload();
    }

    account.addEventListener("change", function () {
      var option = account.options[account.selectedIndex];
      var member = option && option.dataset.member === "1";
      everyone.disabled = !member;
      if (!member) {
        everyone.checked = false;
      }
    });
    form.addEventListener("change", refresh);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      refresh();
    });
  });
})();
