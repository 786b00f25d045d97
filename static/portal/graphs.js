// Portal graphs: fetch each <figure data-graph-url> as Plotly figure JSON (userportal.figures contract) and draw it.
// The server sends x values in UTC; zooming (a Plotly relayout) asks the server again for the
// zoomed period, at a finer step; double-click (autorange) goes back to the whole period.
(function () {
  "use strict";

  function themed(layout) {
    var style = window.getComputedStyle(document.body);
    layout.paper_bgcolor = "rgba(0,0,0,0)";
    layout.plot_bgcolor = "rgba(0,0,0,0)";
    layout.font = Object.assign({}, layout.font || {}, { color: style.color });
    layout.autosize = true;
    return layout;
  }

  // Plotly gives relayout ranges as UTC wall time ("2026-11-22 07:10:44.123"): epoch seconds.
  function toEpoch(text) {
    var iso = String(text).trim().replace(" ", "T");
    if (!/[zZ]|[+-]\d\d:?\d\d$/.test(iso)) {
      iso += "Z";
    }
    var ms = Date.parse(iso);
    return isNaN(ms) ? null : Math.floor(ms / 1000);
  }

  function withParams(url, params) {
    var target = new URL(url, window.location.href);
    Object.keys(params).forEach(function (key) {
      if (params[key] === null || params[key] === undefined || params[key] === "") {
        target.searchParams.delete(key);
      } else {
        target.searchParams.set(key, params[key]);
      }
    });
    return target.toString();
  }

  function caption(figure, text) {
    var element = figure.querySelector("figcaption");
    if (element) {
      element.textContent = figure.dataset.title + ": " + text;
    }
  }

  function load(figure, params) {
    var plot = figure.querySelector(".graph-plot");
    var url = withParams(figure.dataset.graphUrl, params || figure._params || {});
    figure._params = params || figure._params || {};
    figure.setAttribute("aria-busy", "true");
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (answer) {
        figure.removeAttribute("aria-busy");
        if (!answer.ok) {
          Plotly.purge(plot);
          plot.classList.add("graph-message");
          plot.textContent = answer.body.detail || String(answer.body.status || "");
          caption(figure, plot.textContent);
          return;
        }
        plot.classList.remove("graph-message");
        if (!plot.dataset.drawn) {
          plot.textContent = "";
        }
        var fig = answer.body;
        figure._drawing = true;
        return Plotly.react(plot, fig.data, themed(fig.layout || {}), fig.config || {}).then(function () {
          figure._drawing = false;
          plot.dataset.drawn = "1";
          caption(figure, fig.summary || "");
          if (!plot._portalListening) {
            plot._portalListening = true;
            plot.on("plotly_relayout", function (event) {
              relayout(figure, event);
            });
          }
        });
      })
      .catch(function (error) {
        figure.removeAttribute("aria-busy");
        caption(figure, String(error));
      });
  }

  function relayout(figure, event) {
    if (figure._drawing || !event) {
      return;
    }
    var base = Object.assign({}, figure._base || {});
    if (event["xaxis.autorange"]) {
      load(figure, base);
      return;
    }
    var low = event["xaxis.range[0]"];
    var high = event["xaxis.range[1]"];
    if (low === undefined && Array.isArray(event["xaxis.range"])) {
      low = event["xaxis.range"][0];
      high = event["xaxis.range"][1];
    }
    if (low === undefined || high === undefined) {
      return;
    }
    var start = toEpoch(low);
    var end = toEpoch(high);
    if (start === null || end === null || end <= start) {
      return;
    }
    window.clearTimeout(figure._timer);
    figure._timer = window.setTimeout(function () {
      load(figure, Object.assign({}, base, { start: start, end: end, delta: null }));
    }, 250);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof Plotly === "undefined") {
      return;
    }
    var figures = Array.prototype.slice.call(document.querySelectorAll("figure[data-graph-url]"));
    figures.forEach(function (figure) {
      figure._base = {};
      load(figure, {});
    });
    var windowSelect = document.getElementById("graph-window");
    if (windowSelect) {
      windowSelect.addEventListener("change", function () {
        figures.forEach(function (figure) {
          figure._base = windowSelect.value ? { delta: windowSelect.value } : {};
          load(figure, Object.assign({ start: null, end: null }, figure._base));
        });
      });
    }
  });
})();
