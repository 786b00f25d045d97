// GPU job queue dashboard: the charts of the figures the page also shows as text and tables.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("jobqueue-dashboard");
    if (!source || !window.Plotly) {
      return;
    }
    var data = JSON.parse(source.textContent);
    var color = window.getComputedStyle(document.body).color;
    var layout = {
      margin: { t: 10, r: 10, b: 40, l: 50 }, height: 260, paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)", font: { color: color }
    };
    var stats = data.job_statistics;
    var states = ["pending", "running", "completed", "failed", "cancelled"];
    window.Plotly.newPlot("status-chart", [{
      type: "bar", x: states, y: states.map(function (s) { return stats[s] || 0; })
    }], layout, { displayModeBar: false, responsive: true });
    var nodes = data.node_statistics || [];
    if (nodes.length) {
      window.Plotly.newPlot("node-chart", [{
        type: "bar", x: nodes.map(function (n) { return n.node_name; }),
        y: nodes.map(function (n) { return n.total_wait_time; })
      }], layout, { displayModeBar: false, responsive: true });
    }
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
