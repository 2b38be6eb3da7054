/* automl dashboard: draws the plots from the JSON API and keeps a page live from its one
 * event stream. No framework, no build step.
 *
 * - [data-plot=URL]: a figure fetched from URL (Plotly's {data, layout}) and drawn; a click on
 *   a point opens data-click-url with __NAME__ replaced by the point's customdata.
 * - [data-live=URL]: a part of the page that URL (the page itself with ?fragment=NAME) renders.
 * - body[data-stream=URL]: the server-sent events of a job (or of the jobs list). When one says
 *   something changed, the live parts and live plots are fetched again: one refresh at a time,
 *   and changes that arrive meanwhile make exactly one more refresh (never overlapping polls).
 *   The stream ends when the job does.
 */
(function () {
  "use strict";

  const all = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const body = document.body;

  function signIn() {
    location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
  }

  // ---- numbers as the server's templates write them ----------------------------------------
  function num(value, digits) {
    digits = digits || 4;
    if (value === null || value === undefined || value === "") return "–";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e6)) {
      return value.toExponential(digits - 1);
    }
    return String(Number(value.toPrecision(digits)));
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    let minutes = Math.floor(Math.round(seconds) / 60);
    const secs = Math.round(seconds) % 60;
    if (minutes < 60) return minutes + " min " + String(secs).padStart(2, "0") + " s";
    const hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    return hours + " h " + String(minutes).padStart(2, "0") + " min";
  }

  // ---- plots --------------------------------------------------------------------------------
  const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");

  function themed(layout) {
    const css = getComputedStyle(body);
    const fg = css.getPropertyValue("--fg").trim();
    const grid = css.getPropertyValue("--grid").trim();
    const border = css.getPropertyValue("--border").trim();
    const out = Object.assign({}, layout, {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: fg, family: css.fontFamily, size: 12 },
      hoverlabel: { font: { family: css.fontFamily } },
      autosize: true,
    });
    Object.keys(out).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        out[key] = Object.assign({ gridcolor: grid, zerolinecolor: border, linecolor: border }, out[key]);
      }
    });
    if (!out.xaxis) out.xaxis = { gridcolor: grid, zerolinecolor: border };
    if (!out.yaxis) out.yaxis = { gridcolor: grid, zerolinecolor: border };
    (out.annotations || []).forEach(function (a) {
      a.font = Object.assign({ color: fg }, a.font);
      a.arrowcolor = a.arrowcolor || fg;
    });
    return out;
  }

  const plotConfig = {
    responsive: true,
    displaylogo: false, // the logo links to another site
    modeBarButtonsToRemove: ["lasso2d", "select2d", "sendDataToCloud"],
  };

  function pointCount(fig) {
    return fig.data.reduce(function (n, t) {
      return n + (t.meta && t.meta.role === "candidates" && t.x ? t.x.length : 0);
    }, 0);
  }

  async function drawPlot(card) {
    if (typeof window.Plotly === "undefined") return;
    const area = card.querySelector(".plot-area");
    const status = card.querySelector(".plot-status");
    let res;
    try {
      res = await fetch(card.dataset.plot, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (err) {
      status.textContent = "Could not load the plot: the service did not answer.";
      return;
    }
    if (res.status === 401) return signIn();
    if (!res.ok) {
      status.textContent = "Could not load the plot (" + res.status + ").";
      return;
    }
    const fig = await res.json();
    card._figure = fig;
    const points = fig.data.reduce(function (n, t) { return n + (t.x ? t.x.length : 0); }, 0);
    // empty axes say nothing: the plot appears with its first point (a live plot redraws)
    area.hidden = !points;
    card.querySelector("[data-png]").hidden = !points;
    if (points) {
      await window.Plotly.react(area, fig.data, themed(fig.layout), Object.assign({}, plotConfig, {
        toImageButtonOptions: { format: "png", filename: card.dataset.filename || card.id },
      }));
    }
    if (points && !area._automlClick && card.dataset.clickUrl) {
      area._automlClick = true;
      area.on("plotly_click", function (ev) {
        const point = ev && ev.points && ev.points[0];
        const data = point && point.customdata;
        const name = Array.isArray(data) ? data[0] : data;  // [name, ...] or the name
        if (typeof name === "string" && name) {
          location.assign(card.dataset.clickUrl.replace("__NAME__", encodeURIComponent(name)));
        }
      });
    }
    const meta = fig.meta || {};
    let text = "";
    if (!points) text = "Nothing to plot yet.";
    else if (meta.capped) text = "Showing " + num(meta.points) + " of " + num(meta.scored) + " candidates (the chosen, the best and the Pareto front always included).";
    else if (meta.scored !== undefined) text = num(meta.scored) + " scored candidate" + (meta.scored === 1 ? "" : "s") + (meta.total > meta.scored ? " (" + (meta.total - meta.scored) + " not scored: failed or still training)" : "") + ".";
    status.textContent = text;
    card.dataset.points = String(pointCount(fig));
    card.dataset.loaded = String(Number(card.dataset.loaded || 0) + 1);
  }

  function drawPlots(root) {
    return Promise.all(all("[data-plot]", root).map(drawPlot));
  }

  document.addEventListener("click", function (ev) {
    const button = ev.target.closest("[data-png]");
    if (!button || typeof window.Plotly === "undefined") return;
    const card = document.getElementById(button.dataset.png);
    const area = card && card.querySelector(".plot-area");
    if (!area || !area.data) return;
    window.Plotly.downloadImage(area, {
      format: "png",
      filename: button.dataset.filename || "plot",
      width: Math.max(area.clientWidth, 800),
      height: Math.max(area.clientHeight, 450),
    });
  });

  darkQuery.addEventListener("change", function () {
    all("[data-plot]").forEach(function (card) {
      const area = card.querySelector(".plot-area");
      if (card._figure && area.data) window.Plotly.relayout(area, themed(card._figure.layout));
    });
  });

  // ---- live parts of a page ------------------------------------------------------------------
  let refreshing = false;
  let pending = false;

  async function refreshRegion(region) {
    let res;
    try {
      res = await fetch(region.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } });
    } catch (err) {
      return;
    }
    if (res.status === 401) return signIn();
    if (!res.ok) return;
    const html = await res.text();
    const active = document.activeElement;
    const key = active && region.contains(active) ? (active.dataset.key || active.id) : null;
    region.innerHTML = html;
    if (key) {
      const again = region.querySelector('[data-key="' + CSS.escape(key) + '"]') || document.getElementById(key);
      if (again) again.focus();
    }
    await drawPlots(region);
  }

  async function refresh() {
    if (refreshing) {
      pending = true;
      return;
    }
    refreshing = true;
    try {
      do {
        pending = false;
        for (const region of all("[data-live]")) await refreshRegion(region);
        for (const card of all("[data-plot][data-live-plot]")) {
          if (!card.closest("[data-live]")) await drawPlot(card);
        }
      } while (pending);
    } finally {
      refreshing = false;
      body.dataset.refreshes = String(Number(body.dataset.refreshes || 0) + 1);
    }
  }

  function setField(name, text) {
    all('[data-field="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }

  function applyJob(job) {
    all('[data-field="state"]').forEach(function (el) {
      el.textContent = job.state;
      el.className = "badge state-" + job.state;
    });
    all('progress[data-field="progress"]').forEach(function (el) {
      el.value = job.progress;
      el.textContent = Math.round(job.progress * 100) + "%";
    });
    setField("iteration", job.iteration === null ? "not started" : "iteration " + (job.iteration + 1) + (job.max_iterations === null ? " (the time budget decides how many)" : " of " + job.max_iterations));
    setField("candidates", job.candidates_done + " of " + job.candidates_total + " trained");
    setField("best_objective", num(job.best_objective));
    setField("elapsed", duration(job.elapsed_s));
    if (job.time_left_s !== null && job.time_left_s !== undefined) {
      setField("time_left", duration(job.time_left_s) + " of the budget");
    }
    setField("stop_reason", job.stop_reason || "–");
    setField("error", job.error || "");
    all('[data-box="error"]').forEach(function (el) { el.hidden = !job.error; });
    all('[data-field="cancel_requested"]').forEach(function (el) { el.hidden = !job.cancel_requested; });
    all("form[data-action]").forEach(function (form) {
      form.hidden = job.actions.indexOf(form.dataset.action) < 0;
    });
    body.dataset.state = job.state;
    body.dataset.done = String(job.candidates_done);
  }

  function openStream() {
    const url = body.dataset.stream;
    if (!url || typeof window.EventSource === "undefined") return;
    const source = new EventSource(url);
    body.dataset.streamState = "open";
    let seen = body.dataset.version + "|" + (body.dataset.state || "") + "|" + (body.dataset.done || "");

    source.addEventListener("job", function (ev) {
      const job = JSON.parse(ev.data);
      applyJob(job);
      // the version is the job's newest event; candidates finishing change candidates_done
      const now = job.version + "|" + job.state + "|" + job.candidates_done;
      if (now !== seen) refresh();
      seen = now;
    });
    source.addEventListener("jobs", function (ev) {
      const data = JSON.parse(ev.data);
      if (String(data.version) !== body.dataset.version) {
        body.dataset.version = String(data.version);
        refresh();
      }
    });
    source.addEventListener("end", function () {
      source.close();
      body.dataset.streamState = "ended";
      refresh();
    });
    source.addEventListener("deleted", function () {
      source.close();
      body.dataset.streamState = "ended";
      all("form[data-action]").forEach(function (form) { form.hidden = true; });
      setField("state", "deleted");
    });
    source.addEventListener("error", function () {
      // the server ends a long stream now and then; the browser reconnects by itself
      if (source.readyState === EventSource.CLOSED) body.dataset.streamState = "closed";
    });
  }

  // ---- forms ---------------------------------------------------------------------------------
  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      ev.preventDefault();
      return;
    }
    const max = Number(form.dataset.maxBytes || 0);
    const input = form.querySelector('input[type="file"]');
    if (max && input && input.files && input.files[0] && input.files[0].size > max) {
      ev.preventDefault();
      let error = document.getElementById("error-file-size");
      if (!error) {
        error = document.createElement("p");
        error.id = "error-file-size";
        error.className = "field-error";
        input.insertAdjacentElement("afterend", error);
      }
      error.textContent = "the file is larger than the " + (max / 1048576).toFixed(1).replace(/\.0$/, "") + " MB upload limit (AUTOML_MAX_UPLOAD_MB)";
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "error-file-size");
      input.focus();
    }
  });

  drawPlots(document);
  openStream();
})();
