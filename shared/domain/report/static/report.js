// k8s-resource-monitor report page: read a chart's values on hover or keyboard focus.
// The page works without this script (tables, static charts); it only adds the read-out.
// Values come from the chart's JSON data (the stored figures), never from the drawing.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var KIB = 1024, MIB = 1024 * 1024, GIB = 1024 * 1024 * 1024;

  function cpu(v) { return (Number.isInteger(v) ? String(v) : v.toFixed(1)) + "m"; }
  function memory(v) {
    if (v >= GIB) return (v / GIB).toFixed(2) + "Gi";
    if (v >= MIB) return (v / MIB).toFixed(1) + "Mi";
    if (v >= KIB) return Math.round(v / KIB) + "Ki";
    return String(v);
  }
  function utc(ts) { return new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }

  function nearest(times, ts) {
    var lo = 0, hi = times.length - 1;
    while (hi - lo > 1) {
      var mid = (lo + hi) >> 1;
      if (times[mid] <= ts) lo = mid; else hi = mid;
    }
    return Math.abs(times[hi] - ts) < Math.abs(times[lo] - ts) ? hi : lo;
  }

  function swatch(key) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 22 8");
    svg.setAttribute("aria-hidden", "true");
    var mark = document.createElementNS(SVG, key === "band" ? "rect" : "line");
    if (key === "band") {
      mark.setAttribute("class", "band");
      mark.setAttribute("width", "22");
      mark.setAttribute("height", "8");
    } else {
      mark.setAttribute("class", "line line-" + key);
      mark.setAttribute("x1", "0");
      mark.setAttribute("x2", "22");
      mark.setAttribute("y1", "4");
      mark.setAttribute("y2", "4");
    }
    svg.appendChild(mark);
    return svg;
  }

  // (key, label, value text) of step i: the lines over time, the pods' spread, then the levels.
  function rows(data, i) {
    var format = data.kind === "cpu" ? cpu : memory, s = data.series, out = [];
    ["avg", "band", "max", "request", "limit"].forEach(function (key) {
      if (key === "band") {
        if (s.low[i] !== null && s.high[i] !== null) {
          out.push(["band", data.labels.band, format(s.low[i]) + " to " + format(s.high[i])]);
        }
      } else if (s[key] && s[key][i] !== null) {
        out.push([key, data.labels[key], format(s[key][i])]);
      }
    });
    Object.keys(data.levels).forEach(function (key) {
      out.push([key, data.labels[key], format(data.levels[key])]);
    });
    return out;
  }

  function setUp(figure) {
    var source = figure.querySelector("script.chart-data");
    var plot = figure.querySelector(".plot");
    if (!source || !plot) return;
    var data = JSON.parse(source.textContent);
    var start = Number(figure.dataset.start), end = Number(figure.dataset.end);
    var tip = figure.querySelector(".tip"), cursor = plot.querySelector(".cursor");
    var readout = figure.querySelector(".readout");
    var current = data.t.length - 1;

    function show(i, announce) {
      current = i;
      var x = (data.t[i] - start) / (end - start);
      cursor.setAttribute("x1", String(1000 * x));
      cursor.setAttribute("x2", String(1000 * x));
      cursor.setAttribute("visibility", "visible");
      tip.textContent = "";
      var title = document.createElement("b");
      title.textContent = utc(data.t[i]);
      tip.appendChild(title);
      var table = document.createElement("table");
      var lines = rows(data, i);
      lines.forEach(function (row) {
        var tr = table.insertRow(), mark = tr.insertCell(), label = tr.insertCell(), value = tr.insertCell();
        mark.appendChild(swatch(row[0]));
        label.textContent = row[1];
        value.textContent = row[2];
        value.className = "num";
        tr.dataset.line = row[0];
      });
      tip.appendChild(table);
      tip.hidden = false;
      var width = plot.clientWidth, left = plot.offsetLeft + x * width;
      tip.style.left = (x > 0.5 ? Math.max(0, left - tip.offsetWidth - 12) : left + 12) + "px";
      if (announce) {
        readout.textContent = utc(data.t[i]) + ": " + lines.map(function (row) {
          return row[1] + " " + row[2];
        }).join(", ");
      }
    }

    function hide() {
      tip.hidden = true;
      cursor.setAttribute("visibility", "hidden");
    }

    plot.addEventListener("pointermove", function (event) {
      var box = plot.getBoundingClientRect();
      var ratio = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      show(nearest(data.t, start + ratio * (end - start)), false);
    });
    plot.addEventListener("pointerleave", function () {
      if (document.activeElement !== plot) hide();
    });
    plot.addEventListener("focus", function () { show(current, true); });
    plot.addEventListener("blur", hide);
    plot.addEventListener("keydown", function (event) {
      var last = data.t.length - 1, page = Math.max(1, Math.round(data.t.length / 10));
      var moves = {ArrowLeft: current - 1, ArrowRight: current + 1, Home: 0, End: last,
                   PageUp: current - page, PageDown: current + page};
      if (!(event.key in moves)) return;
      event.preventDefault();
      show(Math.min(last, Math.max(0, moves[event.key])), true);
    });
  }

  document.querySelectorAll("figure.chart").forEach(setUp);
})();
