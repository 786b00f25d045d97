// Staff charts: cost per month per tier and per account (stacked bars), from charts.json.
(function () {
  "use strict";
  const url = JSON.parse(document.getElementById("charts-url").textContent) + window.location.search;
  const status = document.getElementById("chart-status");

  function draw(id, data, currency) {
    const traces = Object.entries(data.series).map(([name, values]) => ({
      type: "bar", name: name, x: data.months, y: values.map(Number),
    }));
    window.Plotly.newPlot(id, traces, {
      barmode: "stack", yaxis: { title: currency }, margin: { t: 10 }, height: 360,
    }, { responsive: true, displaylogo: false });
    const total = traces.reduce((sum, t) => sum + t.y.reduce((a, b) => a + b, 0), 0);
    document.getElementById(id + "-caption").textContent += ` — ${total.toFixed(2)} ${currency}, ${data.months.length} months`;
  }

  fetch(url, { credentials: "same-origin" }).then(async (response) => {
    const body = await response.json();
    if (!response.ok) { status.textContent = body.detail || response.statusText; return; }
    draw("chart-tier", body.by_tier, body.currency);
    draw("chart-account", body.by_account, body.currency);
  }).catch((error) => { status.textContent = String(error); });
})();
