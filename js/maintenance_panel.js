// @ts-check
/**
 * MaintenancePanel front-end.  Python owns every rule: which plan runs, what a
 * preview is, whether inputs are valid.  This file draws the traits, keeps the
 * form inputs, and moves the histogram's cut line by looking up the cut that
 * Python precomputed for each whole percent (`distribution.groups[].cut_*`).
 */
import {
  actionButton, errorPanel, formatBytes, formatCount, h, onChange, progressPanel, setBusy, table,
} from "./lib/ui.js";

/** @typedef {import("./lib/ui.js").Model} Model */

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 360; // whole chart, axes included
const HEIGHT = 130;
const PAD = { left: 40, right: 10, top: 8, bottom: 30 }; // room for the axis values and label

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 */
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** @param {number | null | undefined} x */
function formatScore(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? "–" : Number(x).toPrecision(4);
}

/**
 * One metric group's histogram with a movable cut line.
 * @param {any} group ScoreGroup dict
 */
function histogram(group) {
  const edges = /** @type {number[]} */ (group.bin_edges || []);
  const counts = /** @type {number[]} */ (group.counts || []);
  const root = svg("svg", { width: WIDTH, height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "n4a-hist",
    role: "img", "aria-label": `Histogram of ${group.metric ?? "score"}` });
  const lo = edges.length ? edges[0] : 0;
  const hi = edges.length ? edges[edges.length - 1] : 1;
  const span = hi - lo || 1;
  const top = Math.max(1, ...counts);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (/** @type {number} */ v) => PAD.left + ((v - lo) / span) * plotW;
  const y = (/** @type {number} */ c) => PAD.top + plotH - (c / top) * plotH;
  counts.forEach((c, i) => {
    const x0 = x(edges[i]);
    const w = Math.max(1, x(edges[i + 1]) - x0 - 1);
    const bar = svg("rect", { x: x0, y: y(c), width: w, height: PAD.top + plotH - y(c), class: "n4a-hist-bar" });
    const tip = svg("title", {});
    tip.textContent = `${formatScore(edges[i])} – ${formatScore(edges[i + 1])}: ${formatCount(c)} predictions`;
    bar.append(tip);
    root.append(bar);
  });
  // Axes with values: score along x (min, middle, max), prediction count along y (0, max).
  const axis = { stroke: "currentColor", "stroke-width": 1, opacity: 0.6 };
  root.append(svg("line", { x1: PAD.left, x2: PAD.left + plotW, y1: PAD.top + plotH, y2: PAD.top + plotH,
    ...axis, "data-axis": "x" }));
  root.append(svg("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + plotH, ...axis, "data-axis": "y" }));
  const label = (/** @type {string} */ text, /** @type {Record<string, string | number>} */ attrs) => {
    const t = svg("text", { "font-size": 10, fill: "currentColor", ...attrs });
    t.textContent = text;
    root.append(t);
  };
  if (edges.length) {
    for (const [v, anchor] of /** @type {[number, string][]} */ ([[lo, "start"], [(lo + hi) / 2, "middle"], [hi, "end"]])) {
      root.append(svg("line", { x1: x(v), x2: x(v), y1: PAD.top + plotH, y2: PAD.top + plotH + 3, ...axis }));
      label(formatScore(v), { x: x(v), y: PAD.top + plotH + 13, "text-anchor": anchor, "data-tick": "x" });
    }
  }
  label(String(group.metric ?? "score"), { x: PAD.left + plotW / 2, y: HEIGHT - 3, "text-anchor": "middle" });
  label(formatCount(top), { x: PAD.left - 4, y: PAD.top + 8, "text-anchor": "end", "data-tick": "y" });
  label("0", { x: PAD.left - 4, y: PAD.top + plotH, "text-anchor": "end", "data-tick": "y" });
  const ylabel = svg("text", { "font-size": 10, fill: "currentColor", "text-anchor": "middle",
    transform: `translate(10 ${PAD.top + plotH / 2}) rotate(-90)` });
  ylabel.textContent = "predictions";
  root.append(ylabel);
  const line = svg("line", { x1: 0, x2: 0, y1: PAD.top, y2: PAD.top + plotH, class: "n4a-cut-line",
    "data-cut-line": "" });
  root.append(line);
  const caption = h("div", { class: "n4a-muted", "data-cut-caption": "" });
  // Each chart is its own framed card with room around it, so one chart's cut
  // line never reads as the next one's.
  const wrap = h("div", {
    class: "n4a-hist-wrap", "data-histogram": String(group.metric ?? ""),
    style: { display: "inline-block", verticalAlign: "top", margin: "0 16px 16px 0", padding: "8px",
      border: "1px solid var(--jp-border-color2, #ddd)", borderRadius: "4px" },
  },
    h("div", { class: "n4a-section-title" },
      `${group.metric ?? "score"} (${group.lower_is_better ? "lower" : "higher"} is better) · `
      + `${formatCount(group.total)} predictions${group.missing ? ` · ${formatCount(group.missing)} without a score` : ""}`),
    root, caption);

  /** Move the cut line to `percent` (0..100), using Python's cut table. */
  const move = (/** @type {number} */ percent) => {
    const k = Math.min(100, Math.max(0, Math.round(percent)));
    const removed = (group.cut_counts || [])[k] ?? 0;
    const score = (group.cut_scores || [])[k];
    const visible = score !== null && score !== undefined && edges.length > 0;
    line.style.display = visible ? "" : "none";
    if (visible) {
      const px = Math.min(PAD.left + plotW, Math.max(PAD.left, x(score)));
      line.setAttribute("x1", String(px));
      line.setAttribute("x2", String(px));
    }
    caption.textContent = `${k}%: removes ${formatCount(removed)} of ${formatCount(group.total)}`
      + (visible ? ` (scores ${group.lower_is_better ? "≥" : "≤"} ${formatScore(score)})` : "");
  };
  return { el: wrap, move };
}

/**
 * @param {string} label
 * @param {string[]} options values
 * @param {string} value
 * @param {(v: string) => void} onPick
 * @param {Record<string, string>} [labels]
 */
function select(label, options, value, onPick, labels = {}) {
  const el = /** @type {HTMLSelectElement} */ (h("select", { "data-input": label.toLowerCase() }));
  for (const opt of options) {
    const o = /** @type {HTMLOptionElement} */ (h("option", { value: opt }, labels[opt] ?? opt));
    if (opt === value) o.selected = true;
    el.append(o);
  }
  el.addEventListener("change", () => onPick(el.value));
  return h("label", { class: "n4a-field" }, `${label} `, el);
}

/** @param {any} report CompactReport dict */
function compactTable(report) {
  const rows = (report.datasets || []).map((/** @type {any} */ d) => [
    d.dataset_name, formatCount(d.rows_removed), formatBytes(d.bytes_before),
    d.bytes_after === null ? "–" : formatBytes(d.bytes_after),
    d.bytes_after === null ? "–" : formatBytes(d.bytes_before - d.bytes_after),
  ]);
  const t = table(["Dataset", "Rows removed", "Before", "After", "Reclaimed"], rows, { empty: "No array files" });
  t.setAttribute("data-table", "compact");
  return h("div", {},
    h("div", {}, `${report.cancelled ? "Cancelled after " : ""}${formatCount(report.rows_removed)} rows removed, `
      + `${report.bytes_reclaimed === null ? "–" : formatBytes(report.bytes_reclaimed)} reclaimed`), t);
}

/** @param {any} report CleanDeadLinksReport dict @param {boolean} dry */
function cleanSummary(report, dry) {
  const verb = dry ? "Will remove" : "Removed";
  const rows = (report.datasets || []).map((/** @type {any} */ d) => [
    d.dataset_name, formatCount(d.metadata_orphans), formatCount(d.array_orphans),
  ]);
  const t = table(["Dataset", "Predictions without arrays", "Array rows without a prediction"], rows,
    { empty: "No dead links" });
  t.setAttribute("data-table", "clean");
  return h("div", { "data-summary": "clean" },
    h("div", {}, `${verb} ${formatCount(report.removed_metadata)} predictions without arrays and `
      + `${formatCount(report.removed_array_rows)} array rows without a prediction`
      + `${report.cancelled ? " (cancelled part-way)" : ""}.`), t);
}

/** @param {any} report RemoveBottomReport dict @param {boolean} dry */
function removeSummary(report, dry) {
  const rows = (report.datasets || []).map((/** @type {any} */ d) => [
    d.dataset_name, formatCount(d.total), formatCount(d.removed), formatCount(d.remaining),
  ]);
  const t = table(["Dataset", "In scope", dry ? "Will remove" : "Removed", "Remaining"], rows,
    { empty: "No predictions in scope" });
  t.setAttribute("data-table", "remove-bottom");
  const groups = (report.groups || []).map((/** @type {any} */ g) =>
    h("div", { class: "n4a-muted" }, `${g.metric ?? "score"}: ${formatCount(g.removed)} of ${formatCount(g.total)}`
      + ` (${g.lower_is_better ? "≥" : "≤"} ${formatScore(g.threshold_score)})`));
  return h("div", { "data-summary": "remove-bottom" },
    h("div", {}, `${dry ? "Will remove" : "Removed"} ${formatCount(report.removed)} of ${formatCount(report.total)} `
      + `predictions; ${formatCount(report.remaining)} remain${report.cancelled ? " (cancelled part-way)" : ""}.`),
    ...groups, t);
}

/** @param {any} report StorageHealthReport dict */
function integrityLine(report) {
  const orphans = (report.orphan_metadata_count || 0) + (report.orphan_array_count || 0);
  const corrupt = report.corrupt_files || [];
  if (!orphans && !corrupt.length) return h("span", { class: "n4a-ok", "data-integrity": "healthy" }, "Healthy (full check)");
  return h("span", { class: "n4a-bad", "data-integrity": "problems" }, String(report.message || "Problems found"));
}

/** @param {{model: Model, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "n4a-widget n4a-maintenance-panel" });
  const header = h("div", { class: "n4a-header" }, h("span", { class: "n4a-title" }, "Workspace maintenance"));
  const pathEl = h("span", { class: "n4a-path" });
  header.append(pathEl);
  const busy = h("div", { class: "n4a-banner", "data-banner": "busy" });
  const progress = progressPanel(model);
  const errors = errorPanel(model);

  // Compact
  const compactResult = h("div", { "data-result": "compact" });
  const compactSection = h("div", { class: "n4a-section" },
    h("div", { class: "n4a-section-title" }, "Compact"),
    h("div", { class: "n4a-muted" }, "Apply pending deletes and rewrite array files (rows removed, bytes reclaimed per dataset)."),
    h("div", { class: "n4a-row" }, actionButton(model, "Compact", "compact", { kind: "primary" })),
    compactResult);

  // Clean dead links
  const cleanBody = h("div", { "data-result": "clean" });
  const cleanSection = h("div", { class: "n4a-section" },
    h("div", { class: "n4a-section-title" }, "Clean dead links"),
    h("div", { class: "n4a-row" }, actionButton(model, "Preview", "preview_clean_dead_links")),
    cleanBody);

  // Remove bottom %
  // data-lm-suppress-shortcuts: JupyterLab's notebook shortcuts would take the arrow keys otherwise.
  const slider = /** @type {HTMLInputElement} */ (h("input", {
    type: "range", min: "0", max: "1", step: "0.01", "data-input": "fraction", class: "n4a-slider",
    "aria-label": "Fraction to remove", "data-lm-suppress-shortcuts": "true",
  }));
  const sliderLabel = h("span", { class: "n4a-slider-label" });
  const selects = h("div", { class: "n4a-row" });
  const hists = h("div", { class: "n4a-hists", "data-histograms": "" });
  const rbBody = h("div", { "data-result": "remove-bottom" });
  const rbSection = h("div", { class: "n4a-section" },
    h("div", { class: "n4a-section-title" }, "Remove bottom %"),
    h("div", { class: "n4a-row" }, h("label", { class: "n4a-field" }, "Fraction ", slider), sliderLabel),
    selects, hists,
    h("div", { class: "n4a-row" }, actionButton(model, "Preview", "preview_remove_bottom")),
    rbBody);

  // Integrity
  const integrityBody = h("div", { "data-result": "integrity" });
  const integritySection = h("div", { class: "n4a-section" },
    h("div", { class: "n4a-section-title" }, "Integrity check"),
    h("div", { class: "n4a-row" }, actionButton(model, "Run integrity check", "integrity_check")),
    integrityBody);

  root.append(header, busy, errors.el, progress.el, compactSection, cleanSection, rbSection, integritySection);
  el.append(root);

  /** @type {{move: (p: number) => void}[]} */
  let movers = [];
  const moveLines = (/** @type {number} */ fraction) => {
    sliderLabel.textContent = `${Math.round(fraction * 100)}%`;
    for (const m of movers) m.move(fraction * 100);
  };
  const onSlide = () => moveLines(Number(slider.value));
  const onSlideDone = () => {
    model.set("fraction", Number(slider.value));
    model.save_changes();
  };
  /** Arrow keys (and Page/Home/End) move the slider here, not the notebook's cell selection. */
  const onSlideKey = (/** @type {KeyboardEvent} */ e) => {
    const steps = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, PageUp: 10, PageDown: -10 };
    const key = /** @type {keyof typeof steps | "Home" | "End"} */ (e.key);
    if (!(key in steps) && key !== "Home" && key !== "End") return;
    e.preventDefault();
    e.stopPropagation();
    const now = Math.round(Number(slider.value) * 100);
    const next = key === "Home" ? 0 : key === "End" ? 100 : Math.min(100, Math.max(0, now + steps[key]));
    slider.value = String(next / 100);
    onSlide();
    onSlideDone();
  };
  slider.addEventListener("input", onSlide);
  slider.addEventListener("change", onSlideDone);
  slider.addEventListener("keydown", onSlideKey);

  /** @param {string} name @param {string} value */
  const setInput = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };

  /** Confirm / discard buttons for a pending preview; red only when something will be deleted. */
  const confirmRow = (/** @type {string} */ label, /** @type {number} */ count) => h("div", { class: "n4a-row" },
    count > 0
      ? actionButton(model, label, "confirm", { kind: "danger" })
      : actionButton(model, "Confirm (nothing to remove)", "confirm", { kind: "plain" }),
    actionButton(model, "Discard", "discard_preview"));

  const drawInputs = () => {
    const choices = model.get("choices") || {};
    const metrics = choices.score_metrics && choices.score_metrics.length ? choices.score_metrics : ["val_score"];
    selects.replaceChildren(
      select("Metric", metrics, model.get("metric"), (v) => setInput("metric", v)),
      select("Partition", ["", ...(choices.partitions || [])], model.get("partition"), (v) => setInput("partition", v),
        { "": "all partitions" }),
      select("Dataset", ["", ...(choices.datasets || [])], model.get("dataset"), (v) => setInput("dataset", v),
        { "": "all datasets" }),
    );
    slider.value = String(model.get("fraction") ?? 0.1);
  };

  const drawHistograms = () => {
    const dist = model.get("distribution") || {};
    movers = [];
    hists.replaceChildren();
    for (const g of dist.groups || []) {
      const hg = histogram(g);
      movers.push(hg);
      hists.append(hg.el);
    }
    if (!(dist.groups || []).length) {
      const loading = !Object.keys(model.get("choices") || {}).length && model.get("state") !== "error";
      hists.append(h("span", { class: "n4a-muted", "data-loading": loading ? "" : undefined },
        loading ? "Loading workspace…" : "No scores for this choice"));
    }
    moveLines(Number(model.get("fraction") ?? 0));
  };

  const drawResults = () => {
    const preview = model.get("preview") || {};
    const report = model.get("report") || {};
    const last = model.get("last_action");
    compactResult.replaceChildren(last === "compact" ? compactTable(report) : "");
    cleanBody.replaceChildren();
    if (preview.operation === "clean_dead_links") {
      cleanBody.append(cleanSummary(preview.report, true), confirmRow("Confirm: clean dead links",
        (preview.report.removed_metadata || 0) + (preview.report.removed_array_rows || 0)));
    } else if (last === "clean_dead_links") {
      cleanBody.append(cleanSummary(report, false));
    }
    rbBody.replaceChildren();
    if (preview.operation === "remove_bottom") {
      rbBody.append(removeSummary(preview.report, true), confirmRow("Confirm: remove these predictions",
        preview.report.removed || 0));
    } else if (last === "remove_bottom") {
      rbBody.append(removeSummary(report, false));
    }
    integrityBody.replaceChildren(last === "integrity_check" ? integrityLine(report) : "");
  };

  const drawState = () => {
    pathEl.textContent = String(model.get("workspace_path") || "");
    const running = model.get("state") === "running";
    const reason = running ? `${model.get("job_name") || "A job"} is running; wait or Cancel.` : model.get("busy_reason");
    busy.style.display = reason ? "" : "none";
    busy.textContent = reason ? `Busy: ${reason}` : "";
    setBusy(root, running || Boolean(model.get("busy_reason")));
    for (const b of root.querySelectorAll("button[data-action]")) {
      const btn = /** @type {HTMLButtonElement} */ (b);
      const action = btn.dataset.action;
      if (action === "cancel") continue;
      if (action === "integrity_check" || action === "refresh" || action === "discard_preview") btn.disabled = running;
      btn.title = btn.disabled ? String(reason || "") : "";
    }
    slider.disabled = running;
  };

  const drawAll = () => {
    drawInputs();
    drawHistograms();
    drawResults();
    drawState();
  };
  drawAll();
  const disposers = [
    onChange(model, ["choices", "metric", "partition", "dataset"], drawInputs),
    onChange(model, ["fraction"], () => {
      slider.value = String(model.get("fraction") ?? 0);
      moveLines(Number(model.get("fraction") ?? 0));
    }),
    onChange(model, ["distribution", "choices"], drawHistograms),
    onChange(model, ["preview", "report", "last_action"], () => { drawResults(); drawState(); }),
    onChange(model, ["state", "busy_reason", "job_name", "workspace_path"], drawState),
  ];

  return () => {
    for (const d of disposers) d();
    slider.removeEventListener("input", onSlide);
    slider.removeEventListener("change", onSlideDone);
    slider.removeEventListener("keydown", onSlideKey);
    progress.dispose();
    errors.dispose();
    root.remove();
  };
}

export default { render };
