// The job page's energy and cost line: fetched from value/cost.json after the page loads.
(function () {
  "use strict";

  function number(value) {
    if (Math.abs(value) >= 100) { return value.toFixed(0); }
    if (Math.abs(value) >= 1) { return value.toFixed(2); }
    return value.toPrecision(2);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var target = document.getElementById("cost");
    var labelsElement = document.getElementById("cost-labels");
    if (!target || !labelsElement || !target.dataset.costUrl) {
      return;
    }
    var labels = JSON.parse(labelsElement.textContent);
    fetch(target.dataset.costUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (cost) {
        if (!cost || !Object.keys(cost).length) {
          return;
        }
        var currency = cost.currency ? " " + cost.currency : "";
        var parts = [];
        ["kwh", "electric_car_range_km", "co2_emissions_kg"].forEach(function (key) {
          if (cost[key] !== undefined) { parts.push(labels[key].replace("%(value)s", number(cost[key]))); }
        });
        var money = [];
        ["electricity_cost_dollar", "cooling_cost_dollar", "hardware_cost_dollar", "total_cost_dollar"].forEach(function (key) {
          if (cost[key] !== undefined) { money.push(labels[key].replace("%(value)s", number(cost[key]) + currency)); }
        });
        var text = labels.title + ": " + parts.concat(money).join(", ");
        if (cost.energy_source && labels[cost.energy_source]) { text += " (" + labels[cost.energy_source] + ")"; }
        if (cost.cloud_cost_dollar !== undefined) {
          text += ". " + labels.cloud_cost_dollar.replace("%(value)s", number(cost.cloud_cost_dollar) + currency);
        }
        target.textContent = text + ".";
        target.hidden = false;
      })
      .catch(function () { /* the cost line is optional */ });
  });
})();
