// @ts-check
/**
 * StorageHealth front-end: draws the `status`, `stats` and `report` traits
 * that Python fills; Refresh / Run integrity check are sent to Python.
 */
import {
  actionButton, errorPanel, formatBytes, formatCount, formatTime, h, onChange, progressPanel, setBusy, stackedBar,
  table, storageModeBadge,
} from "./lib/ui.js";

/** @typedef {import("./lib/ui.js").Model} Model */

/** @type {Record<string, string>} */
const COLORS = {
  "Metadata store": "#7e57c2",
  "Prediction arrays": "#1e88e5",
  Artifacts: "#43a047",
  Exports: "#f9a825",
  Logs: "#8d6e63",
  Other: "#9e9e9e",
};

/**
 * Storage breakdown: every category Python reports, with its note (what
 * "Other" holds; arrays that live inside a legacy DuckDB file).
 * @param {any} stats
 * @param {Record<string, {text: string, entries: {name: string, size_bytes: number}[], inline?: boolean}>} notes
 */
function breakdown(stats, notes) {
  const usage = /** @type {{name: string, size_bytes: number}[]} */ (stats.space_usage || []);
  const segments = usage
    .filter((u) => u.size_bytes > 0 || ["Metadata store", "Prediction arrays", "Artifacts"].includes(u.name))
    .map((u) => {
      const note = notes[u.name];
      return {
        label: u.name, value: u.size_bytes, color: COLORS[u.name] || "#9e9e9e", note: note ? note.text : undefined,
        valueText: note && note.inline ? "(inside store.duckdb)" : undefined,
      };
    });
  const explain = Object.entries(notes).map(([name, note]) => h("div", { class: "n4a-muted", "data-usage-note": name },
    h("strong", {}, `${name}: `), note.text,
    note.entries && note.entries.length
      ? ` Largest: ${note.entries.map((e) => `${e.name} ${formatBytes(e.size_bytes)}`).join(", ")}.` : ""));
  return h("div", {}, stackedBar(segments), ...explain);
}

/** @param {any} report */
function integrityLine(report) {
  if (!report || report.total_predictions === undefined) return h("span", { class: "n4a-muted" }, "Not checked yet");
  const corrupt = report.corrupt_files || [];
  const orphans = (report.orphan_metadata_count || 0) + (report.orphan_array_count || 0);
  if (!corrupt.length && !orphans) {
    return h("span", { class: "n4a-ok", "data-integrity": "healthy" }, `Healthy${report.deep ? " (full check)" : ""}`);
  }
  const parts = [];
  if (orphans) {
    parts.push(`${formatCount(orphans)} orphans (${formatCount(report.orphan_metadata_count)} predictions without arrays, `
      + `${formatCount(report.orphan_array_count)} array rows without a prediction)`);
  }
  if (corrupt.length) {
    parts.push(`${corrupt.length} corrupt file(s): ${corrupt.map((/** @type {string} */ p) => p.split(/[\\/]/).pop()).join(", ")}`);
  }
  return h("span", { class: "n4a-bad", "data-integrity": "problems" }, parts.join(" · "));
}

/** @param {any} report */
function datasetTable(report) {
  const datasets = /** @type {any[]} */ (report.datasets || []);
  const largest = Math.max(1, ...datasets.map((d) => d.parquet_size_bytes || 0));
  // A bar per dataset, relative to the largest array file: sizes at a glance.
  const sizeBar = (/** @type {number} */ bytes) => h("div", {
    class: "n4a-hbar", "data-size-bar": String(bytes), title: formatBytes(bytes),
    style: { width: `${Math.max(bytes > 0 ? 2 : 0, Math.round((100 * bytes) / largest))}%` },
  });
  const rows = datasets.map((d) => [
    d.name, formatCount(d.prediction_count), formatBytes(d.parquet_size_bytes),
    h("div", { class: "n4a-hbar-track" }, sizeBar(d.parquet_size_bytes || 0)), formatCount(d.pending_tombstones),
  ]);
  const t = table(["Dataset", "Predictions", "Array file", "", "Pending deletes"], rows, { empty: "No datasets yet" });
  t.setAttribute("data-table", "datasets");
  return t;
}

/** @param {{model: Model, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "n4a-widget n4a-storage-health" });
  const header = h("div", { class: "n4a-header" });
  const banner = h("div", { class: "n4a-banner", "data-banner": "migration" });
  const body = h("div", {});
  const progress = progressPanel(model);
  const errors = errorPanel(model);
  const buttons = h("div", { class: "n4a-row" },
    actionButton(model, "Refresh", "refresh"),
    actionButton(model, "Run integrity check", "integrity_check", { kind: "primary" }));
  root.append(header, banner, errors.el, progress.el, body, buttons);
  el.append(root);

  const draw = () => {
    const status = model.get("status") || {};
    const stats = model.get("stats") || {};
    const report = model.get("report") || {};
    const known = report.total_predictions !== undefined;
    const state = model.get("state");
    header.replaceChildren(
      h("span", { class: "n4a-title" }, "Workspace storage"),
      storageModeBadge(status.storage_mode),
      h("span", { class: "n4a-path" }, String(model.get("workspace_path") || "")),
    );
    if (status.migration_needed) {
      banner.style.display = "";
      banner.replaceChildren(
        h("strong", {}, status.storage_mode === "mid_migration" ? "Interrupted migration: " : "Migration needed: "),
        String(status.message || ""), " Open ",
        h("code", {}, `MigrationWizard(${JSON.stringify(model.get("workspace_path"))})`), " to migrate it safely.",
      );
    } else {
      banner.style.display = "none";
    }
    if (!known) {
      // Never an empty workspace before it is known to be empty.
      body.replaceChildren(state === "error" ? "" : h("div", { class: "n4a-section n4a-muted", "data-loading": "" },
        "Loading workspace…"));
      setBusy(root, state === "running");
      return;
    }
    body.replaceChildren(
      h("div", { class: "n4a-section" }, h("div", { class: "n4a-section-title" }, "Storage"),
        stats.space_usage ? breakdown(stats, model.get("usage_notes") || {}) : h("span", { class: "n4a-muted" }, "…")),
      h("div", { class: "n4a-section" },
        h("span", { class: "n4a-section-title" }, "Integrity: "), integrityLine(report),
        report.checked_at
          ? h("span", { class: "n4a-muted", "data-checked-at": report.checked_at, title: report.checked_at },
            `  checked ${formatTime(report.checked_at)}`)
          : null),
      h("div", { class: "n4a-section" },
        h("div", { class: "n4a-section-title" },
          `Datasets (${formatCount(report.total_datasets ?? 0)}) · ${formatCount(report.total_predictions ?? 0)} predictions`
          + ` · ${formatCount(report.pending_tombstones ?? 0)} pending deletes`),
        datasetTable(report)),
    );
    setBusy(root, state === "running");
  };
  draw();
  const dispose = onChange(model, ["status", "stats", "report", "state", "workspace_path", "usage_notes"], draw);

  return () => {
    dispose();
    progress.dispose();
    errors.dispose();
    root.remove();
  };
}

export default { render };
