/* The Monitoring page's charts (metrics/templates/metrics/monitoring.html).
 *
 * Reads the JSON the server put in #monitoring-data (metrics, thresholds, breaches) and
 * #monitoring-series (the points: per metric id, t as whole steps after data.origin, y, lo, hi; see
 * metrics/monitoring.py) and draws one Chart.js chart per metric: the hourly (or per-minute) mean with its min–max band, or the sum per bucket
 * for counts; the thresholds of exit criteria and rollback triggers as dashed lines; trigger
 * breach episodes as shaded regions. The time axis is a plain linear axis of epoch milliseconds
 * with ticks placed and labelled here in the plan's time zone, so no date adapter is needed.
 */
(function () {
  "use strict";

  var HOUR = 3600 * 1000;
  var DAY = 24 * HOUR;
  var STEPS = [HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY];
  var COLOURS = {
    line: "#1e6fd9",
    band: "rgba(30, 111, 217, 0.15)",
    bar: "rgba(30, 111, 217, 0.75)",
    trigger: "#c62828",
    criterion: "#b26a00",
    breach: "rgba(198, 40, 40, 0.14)",
    breachEdge: "rgba(198, 40, 40, 0.7)",
  };

  function formatter(timeZone, options) {
    try {
      return new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: timeZone }, options));
    } catch (e) {
      return new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: "UTC" }, options));
    }
  }

  function number(value) {
    if (value === null || value === undefined) return "—";
    var abs = Math.abs(value);
    var digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
    return value.toLocaleString("en-GB", { maximumFractionDigits: digits });
  }

  // Shaded regions for breach episodes, drawn under the datasets.
  var breachPlugin = {
    id: "breaches",
    beforeDatasetsDraw: function (chart, args, options) {
      var regions = (options && options.regions) || [];
      if (!regions.length) return;
      var area = chart.chartArea;
      var x = chart.scales.x;
      var ctx = chart.ctx;
      ctx.save();
      regions.forEach(function (region) {
        var left = Math.max(x.getPixelForValue(region.start), area.left);
        var right = Math.min(x.getPixelForValue(region.end), area.right);
        if (right < area.left || left > area.right) return;
        right = Math.max(right, left + 2); // an instant still shows
        ctx.fillStyle = COLOURS.breach;
        ctx.fillRect(left, area.top, right - left, area.bottom - area.top);
        ctx.fillStyle = COLOURS.breachEdge;
        ctx.fillRect(left, area.top, 1.5, area.bottom - area.top);
      });
      ctx.restore();
    },
  };

  // Ticks on whole hours / days of the plan's time zone rather than round millisecond counts;
  // each tick is moved by the change of the zone's offset since the start (DST), so a day tick
  // stays on local midnight.
  function timeTicks(data, offsetMs) {
    return function (scale) {
      var span = scale.max - scale.min;
      var step = STEPS[STEPS.length - 1];
      for (var i = 0; i < STEPS.length; i++) {
        if (span / STEPS[i] <= 8) {
          step = STEPS[i];
          break;
        }
      }
      var first = Math.ceil((scale.min + offsetMs) / step) * step - offsetMs;
      var ticks = [];
      for (var t = first; t <= scale.max; t += step) {
        var value = t + offsetMs - zoneOffset(data.timeZone, t);
        if (value >= scale.min && value <= scale.max) ticks.push({ value: value });
      }
      scale.ticks = ticks;
      scale._pilotStep = step;
    };
  }

  // The zone's offset from UTC at ``instant`` in ms (for aligning ticks on local midnights).
  var wallClocks = {};
  function zoneOffset(timeZone, instant) {
    var wall = wallClocks[timeZone] || (wallClocks[timeZone] = formatter(timeZone, {
      year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric", hourCycle: "h23",
    }));
    var parts = wall.formatToParts(new Date(instant));
    var v = {};
    parts.forEach(function (p) { v[p.type] = parseInt(p.value, 10); });
    var local = Date.UTC(v.year, v.month - 1, v.day, v.hour, v.minute, v.second);
    return local - Math.floor(instant / 1000) * 1000;
  }

  function points(series, key, data) {
    // A missing bucket breaks the line instead of joining across the gap.
    var out = [];
    var t = series.t;
    var y = series[key];
    for (var i = 0; i < t.length; i++) {
      if (i > 0 && t[i] - t[i - 1] > 1) out.push({ x: data.origin + (t[i - 1] + 1) * data.step, y: null });
      out.push({ x: data.origin + t[i] * data.step, y: y[i] });
    }
    return out;
  }

  function build(canvas, metric, series, data) {
    var isCount = metric.aggregate === "sum";
    var few = series.t.length < 60;
    var unit = metric.unit ? " " + metric.unit : "";
    var datasets = [];
    if (!isCount && series.lo && series.hi) {
      datasets.push({
        label: "", data: points(series, "lo", data), borderWidth: 0, pointRadius: 0,
        backgroundColor: COLOURS.band, fill: false, order: 3,
      });
      datasets.push({
        label: "min–max", data: points(series, "hi", data), borderWidth: 0, pointRadius: 0,
        backgroundColor: COLOURS.band, fill: "-1", order: 3,
      });
    }
    datasets.push({
      type: isCount ? "bar" : "line",
      label: isCount ? "sum per " + data.bucket : "mean per " + data.bucket,
      data: isCount ? points(series, "y", data).filter(function (p) { return p.y !== null; })
        : points(series, "y", data),
      borderColor: COLOURS.line,
      backgroundColor: isCount ? COLOURS.bar : COLOURS.line,
      borderWidth: isCount ? 0 : 1.5,
      pointRadius: few ? 2 : 0,
      maxBarThickness: 8,
      minBarLength: 2,
      order: 1,
    });
    metric.thresholds.forEach(function (line) {
      datasets.push({
        type: "line",
        label: line.label,
        data: [{ x: data.start, y: line.value }, { x: data.end, y: line.value }],
        borderColor: COLOURS[line.kind] || COLOURS.criterion,
        borderDash: line.kind === "trigger" ? [6, 4] : [2, 3],
        borderWidth: 1.5,
        pointRadius: 0,
        fill: false,
        order: 0,
      });
    });

    var full = formatter(data.timeZone, {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    });
    var dayLabel = formatter(data.timeZone, { weekday: "short", day: "numeric", month: "short" });
    var timeLabel = formatter(data.timeZone, { hour: "2-digit", minute: "2-digit" });

    return new Chart(canvas, {
      type: isCount ? "bar" : "line",
      data: { datasets: datasets },
      plugins: [breachPlugin],
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: {
            type: "linear",
            min: data.start,
            max: data.end,
            offset: false,
            afterBuildTicks: timeTicks(data, zoneOffset(data.timeZone, data.start)),
            ticks: {
              maxRotation: 0,
              autoSkip: true,
              callback: function (value) {
                var step = this._pilotStep || DAY;
                return step >= DAY ? dayLabel.format(value) : timeLabel.format(value);
              },
            },
          },
          y: {
            beginAtZero: isCount,
            ticks: isCount ? { precision: 0 } : {},
            title: { display: !!metric.unit, text: metric.unit },
          },
        },
        plugins: {
          breaches: { regions: metric.breaches },
          legend: {
            labels: {
              boxWidth: 14,
              filter: function (item) { return item.text !== ""; },
            },
          },
          tooltip: {
            filter: function (item) { return item.dataset.label !== "" && item.datasetIndex >= 0; },
            callbacks: {
              title: function (items) { return items.length ? full.format(items[0].parsed.x) : ""; },
              label: function (item) { return item.dataset.label + ": " + number(item.parsed.y) + unit; },
            },
          },
        },
      },
    });
  }

  function init() {
    var source = document.getElementById("monitoring-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var series = JSON.parse(document.getElementById("monitoring-series").textContent);
    var charts = [];
    data.metrics.forEach(function (metric) {
      var canvas = document.getElementById(metric.canvas);
      var points = series[String(metric.id)];
      if (canvas && points && points.t.length) charts.push(build(canvas, metric, points, data));
    });
    var section = document.getElementById("monitoring-charts");
    if (section) section.dataset.chartsReady = String(charts.length);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
