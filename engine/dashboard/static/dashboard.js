// The live page: polls /api/data about once a second, appends the new points to each chart's arrays and
// redraws with uPlot. State is on window.dashboard so that a test (or a curious operator) can read it.
"use strict";

(() => {
  const POLL_MS = 1000;
  const MAX_POINTS = 900;
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const ms = (s) => (s === null || s === undefined ? null : s * 1000);
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

  // Each chart: its series as {label: value or null} for one point. Series appearing later (a new drift
  // signal, a new experiment variant) get nulls for the points before them.
  const SPECS = {
    throughput: {
      unit: "events/s",
      dashed: ["consumed/s"],
      series: (p) => ({
        "learned/s": p.learned_per_s,
        "consumed/s": p.consumed_per_s,
        "dead letters/s": p.dead_letters_per_s,
      }),
    },
    freshness: {
      unit: "ms",
      series: (p) => ({ p50: ms(p.freshness_p50_s), p99: ms(p.freshness_p99_s) }),
    },
    quality: {
      unit: "HR@k",
      markers: true,
      series: (p) => ({ "last 30 s": p.hr_recent, "since start": p.hr_total }),
    },
    drift: {
      unit: "detections",
      markers: true,
      series: (p) => (p.up ? { "all signals": sum(p.drift), ...p.drift } : { "all signals": null }),
    },
    experiments: {
      unit: "mean reward",
      series: (p) => Object.fromEntries(Object.entries(p.variants).map(([k, v]) => [k, v.mean_reward])),
    },
  };

  const state = {
    since: 0,
    polls: 0,
    errors: 0,
    last: null,
    drift: [],
    charts: {},
  };
  window.dashboard = state;

  for (const name of Object.keys(SPECS)) {
    state.charts[name] = { x: [], series: {}, plot: null, rebuild: true };
  }

  function append(name, point) {
    const chart = state.charts[name];
    const values = SPECS[name].series(point);
    chart.x.push(point.t);
    for (const label of Object.keys(values)) {
      if (!(label in chart.series)) {
        chart.series[label] = new Array(chart.x.length - 1).fill(null);
        chart.rebuild = true;
      }
    }
    for (const [label, arr] of Object.entries(chart.series)) {
      const v = values[label];
      arr.push(v === undefined || Number.isNaN(v) ? null : v);
    }
    if (chart.x.length > MAX_POINTS) {
      const cut = chart.x.length - MAX_POINTS;
      chart.x.splice(0, cut);
      for (const arr of Object.values(chart.series)) arr.splice(0, cut);
    }
  }

  // Dashed vertical lines at the drift records' arrival times.
  const driftMarkers = {
    hooks: {
      draw: [
        (u) => {
          const [lo, hi] = [u.scales.x.min, u.scales.x.max];
          const ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "#ff7f0e";
          ctx.setLineDash([6, 4]);
          ctx.lineWidth = 1.5 * devicePixelRatio;
          for (const record of state.drift) {
            const t = record.at_ms / 1000;
            if (t < lo || t > hi) continue;
            const cx = Math.round(u.valToPos(t, "x", true));
            ctx.beginPath();
            ctx.moveTo(cx, u.bbox.top);
            ctx.lineTo(cx, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        },
      ],
    },
  };

  function render(name) {
    const chart = state.charts[name];
    const el = document.getElementById(`chart-${name}`);
    const labels = Object.keys(chart.series);
    const data = [chart.x, ...labels.map((l) => chart.series[l])];
    if (chart.plot && !chart.rebuild) {
      chart.plot.setData(data);
      return;
    }
    if (chart.plot) chart.plot.destroy();
    const opts = {
      width: Math.max(300, el.clientWidth),
      height: 220,
      scales: { x: { time: true } },
      series: [
        {},
        ...labels.map((label, i) => ({
          label,
          stroke: PALETTE[i % PALETTE.length],
          width: 2,
          dash: (SPECS[name].dashed || []).includes(label) ? [8, 5] : undefined,
          points: { show: false },
        })),
      ],
      axes: [{}, { label: SPECS[name].unit, size: 60 }],
      plugins: SPECS[name].markers ? [driftMarkers] : [],
    };
    chart.plot = new uPlot(opts, data, el);
    chart.rebuild = false;
  }

  const fmt = (v, digits, unit) => (v === null || v === undefined ? "-" : `${v.toFixed(digits)}${unit}`);
  const text = (id, value) => {
    document.getElementById(id).textContent = value;
  };

  function header(body) {
    text("namespace", `namespace ${body.namespace}`);
    text("model", `model ${body.model_versions.join(", ") || "?"}`);
    text("workers", `${body.workers.length} worker(s) beating`);
    const down = body.targets.filter((t) => !t.up);
    const status = document.getElementById("status");
    const problems = down.map((t) => `${t.url}: ${t.error}`);
    if (body.redis_error) problems.push(`redis: ${body.redis_error}`);
    status.textContent = problems.length ? problems.join("; ") : `live, ${new Date(body.now * 1000).toLocaleTimeString()}`;
    status.className = `tag ${problems.length ? "bad" : "good"}`;
    const p = state.last;
    if (p) {
      text("tile-throughput", fmt(p.learned_per_s, 1, ""));
      text("tile-freshness", fmt(ms(p.freshness_p99_s), 0, " ms"));
      text("tile-hr", fmt(p.hr_recent, 3, ""));
      text("tile-lag", fmt(p.lag, 0, ""));
      text("tile-drift", p.up ? String(sum(p.drift)) : "-");
    }
    document.getElementById("experiments-empty").hidden = Object.keys(state.charts.experiments.series).length > 0;
  }

  function driftTable() {
    const rows = state.drift.map((r) => {
      const tr = document.createElement("tr");
      const before = r.before ? r.before.mean.toFixed(3) : "?";
      const after = r.after ? r.after.mean.toFixed(3) : "?";
      const cells = [
        new Date(r.at_ms).toLocaleTimeString(),
        r.signal,
        r.detector,
        r.category || "",
        `${before} \u2192 ${after}`,
        r.events ?? "",
      ];
      for (const c of cells) {
        const td = document.createElement("td");
        td.textContent = String(c);
        tr.appendChild(td);
      }
      return tr;
    });
    document.querySelector("#drift-table tbody").replaceChildren(...rows);
    document.getElementById("drift-empty").hidden = rows.length > 0;
  }

  async function poll() {
    try {
      const response = await fetch(`/api/data?since=${state.since}`, { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.json();
      state.drift = body.drift;
      for (const point of body.points) {
        for (const name of Object.keys(SPECS)) append(name, point);
        state.since = Math.max(state.since, point.t);
        state.last = point;
      }
      for (const name of Object.keys(SPECS)) render(name);
      header(body);
      driftTable();
      state.polls += 1;
    } catch (err) {
      state.errors += 1;
      const status = document.getElementById("status");
      status.textContent = `dashboard server unreachable (${err.message})`;
      status.className = "tag bad";
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  window.addEventListener("resize", () => {
    for (const [name, chart] of Object.entries(state.charts)) {
      const el = document.getElementById(`chart-${name}`);
      if (chart.plot) chart.plot.setSize({ width: Math.max(300, el.clientWidth), height: 220 });
    }
  });

  // For tests and debugging: per chart, points, non-null values per series, and canvas pixels drawn in
  // a series colour (so "rendered with data" means lines on the canvas, not only arrays in memory).
  state.summary = () => {
    const out = {};
    for (const [name, chart] of Object.entries(state.charts)) {
      const canvas = document.querySelector(`#chart-${name} canvas`);
      const labels = Object.keys(chart.series);
      const inked = {};
      if (canvas && canvas.width && canvas.height) {
        const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        labels.forEach((label, i) => {
          const hex = PALETTE[i % PALETTE.length];
          const rgb = [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
          let n = 0;
          for (let j = 0; j < pixels.length; j += 4) {
            if (pixels[j + 3] > 200 && Math.abs(pixels[j] - rgb[0]) + Math.abs(pixels[j + 1] - rgb[1]) + Math.abs(pixels[j + 2] - rgb[2]) < 60) n += 1;
          }
          inked[label] = n;
        });
      }
      out[name] = {
        points: chart.x.length,
        values: Object.fromEntries(labels.map((l) => [l, chart.series[l].filter((v) => v !== null)])),
        canvas: canvas ? [canvas.width, canvas.height] : null,
        inked,
      };
    }
    return out;
  };

  poll();
})();
