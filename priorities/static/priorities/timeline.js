// The timeline: GPUs reserved by priorities per type (steps) against the cluster's GPUs (dashed).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("priority-timeline");
    var chart = document.getElementById("timeline-chart");
    if (!node || !chart || !window.Plotly) {
      return;
    }
    var data = JSON.parse(node.textContent);
    var traces = [];
    data.series.forEach(function (s) {
      traces.push({ x: s.x, y: s.y, name: s.gpu_type, mode: "lines", line: { shape: "hv" } });
      if (s.capacity !== null && s.capacity !== undefined) {
        traces.push({
          x: [data.start, data.end], y: [s.capacity, s.capacity], name: s.gpu_type + " (cluster)",
          mode: "lines", line: { dash: "dash" }
        });
      }
    });
    window.Plotly.newPlot(chart, traces, {
      margin: { t: 20 }, yaxis: { title: "GPUs", rangemode: "tozero" },
      shapes: [{ type: "line", x0: data.now, x1: data.now, yref: "paper", y0: 0, y1: 1, line: { dash: "dot" } }]
    }, { responsive: true, displaylogo: false });
  });
})();
