// The cost playground: current rates from /billing/formula?type=<tier>, and a live breakdown.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("playground-config").textContent);
  const form = document.getElementById("playground");
  const ratesText = document.getElementById("pg-rates");
  const result = document.getElementById("pg-result");
  let current = null;

  function num(id) {
    const value = parseFloat(document.getElementById(id).value);
    return Number.isFinite(value) && value > 0 ? value : 0;
  }

  function render() {
    if (!current) return;
    const rates = current.rates;
    const factor = parseFloat(current.gpu_factors[document.getElementById("pg-gpu-type").value] || "1");
    const parts = {
      cpu: num("pg-cpu") * parseFloat(rates.cpu),
      gpu: num("pg-gpu") * factor * parseFloat(rates.gpu),
      mem: num("pg-mem") * parseFloat(rates.mem),
    };
    parts.total = parts.cpu + parts.gpu + parts.mem;
    result.replaceChildren();
    for (const key of ["cpu", "gpu", "mem", "total"]) {
      const row = document.createElement("tr");
      const head = document.createElement("th");
      head.scope = "row";
      head.textContent = config.labels[key];
      const cell = document.createElement("td");
      cell.className = "text-end";
      cell.textContent = parts[key].toFixed(2) + " " + config.currency;
      row.append(head, cell);
      result.append(row);
    }
  }

  async function load() {
    const tier = document.getElementById("pg-type").value;
    const response = await fetch(config.formula_url + "?type=" + encodeURIComponent(tier), { credentials: "same-origin" });
    if (!response.ok) return;
    current = await response.json();
    ratesText.textContent = `${current.name}: CPU ${current.rates.cpu}, GPU ${current.rates.gpu}, ${config.labels.mem} ${current.rates.mem} ${current.currency}/h`;
    render();
  }

  form.addEventListener("input", render);
  document.getElementById("pg-type").addEventListener("change", load);
  form.addEventListener("submit", (event) => { if (current) { event.preventDefault(); render(); } });
  load();
})();
