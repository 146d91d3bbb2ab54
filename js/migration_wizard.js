// @ts-check
/**
 * MigrationWizard front-end: renders the `status`, `stats`, `plan` and `report`
 * traits Python fills.  Dry run / Start / Resume / Roll back are sent to
 * Python; the only local state is the output-folder text box.
 */
import {
  actionButton, errorPanel, formatBytes, formatCount, formatDuration, h, onChange, progressPanel, sendAction,
  setBusy, table,
  storageModeBadge,
} from "./lib/ui.js";
import storageHealth from "./storage_health.js";

/** @typedef {import("./lib/ui.js").Model} Model */

/**
 * The embedded StorageHealth (after "Open StorageHealth") reads its traits
 * from the wizard's `health` dict and sends its buttons through the wizard's
 * `health_action`; Python mirrors a real StorageHealth widget into `health`.
 * @param {Model} model
 * @returns {Model}
 */
function healthModel(model) {
  const isChange = (/** @type {string | null | undefined} */ e) => Boolean(e && e.startsWith("change:"));
  return {
    get: (name) => (model.get("health") || {})[name],
    set: () => {},
    save_changes: () => {},
    send: (content) => sendAction(model, "health_action", { content }),
    on: (event, cb) => model.on(isChange(event) ? "change:health" : event, cb),
    off: (event, cb) => model.off(isChange(event) ? "change:health" : event, cb),
  };
}

/** @param {string} path */
function baseName(path) {
  return String(path).split(/[\\/]/).filter(Boolean).pop() || String(path);
}

/**
 * @param {[string, string | Node][]} pairs
 * @param {string} name
 */
function facts(pairs, name) {
  return h("dl", { class: "n4a-facts", "data-facts": name },
    ...pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** @param {any} plan */
function planView(plan) {
  const rows = (plan.datasets || []).map((/** @type {any} */ d) => [d.name, formatCount(d.predictions)]);
  const t = table(["Dataset", "Predictions"], rows, { empty: "No predictions" });
  t.setAttribute("data-table", "plan-datasets");
  const notes = [...(plan.warnings || []), ...(plan.errors || [])].map((w) => h("div", { class: "n4a-muted" }, w));
  return h("div", { class: "n4a-section", "data-section": "plan" },
    h("div", { class: "n4a-section-title" }, "Dry run: what Start will do"),
    facts([
      ["Format", String(plan.source_format || "")],
      ["Predictions", `${formatCount(plan.total_rows)} (${formatCount(plan.rows_migrated)} migrated)`],
      ["Datasets", formatCount(plan.datasets_migrated)],
      ["Legacy store", formatBytes(plan.duckdb_size_before)],
      ["Legacy arrays", formatBytes(plan.legacy_array_bytes)],
      ["Estimated time", plan.estimated_duration_seconds === null || plan.estimated_duration_seconds === undefined ? "?" : `~${formatDuration(plan.estimated_duration_seconds)}`],
      ["Result at", String(plan.output_path || "")],
    ], "plan"),
    t, ...notes);
}

/** @param {any} report */
function resultView(report) {
  if (report.state === "rolled_back") {
    return h("div", { class: "n4a-section n4a-ok", "data-section": "result" },
      `Rolled back: your original workspace is back at ${report.output_path}.`);
  }
  const ok = report.verification_passed;
  return h("div", { class: "n4a-section", "data-section": "result" },
    h("div", { class: "n4a-section-title" }, ok ? "Migration complete" : "Migration report"),
    facts([
      ["Rows", `${formatCount(report.rows_migrated)} of ${formatCount(report.total_rows)}`],
      ["Datasets", formatCount(report.datasets_migrated)],
      ["Size before", formatBytes(report.size_before_bytes)],
      ["Size after", formatBytes(report.size_after_bytes)],
      ["Duration", formatDuration(report.duration_seconds || 0)],
      ["Verification", h("span", { class: ok ? "n4a-ok" : "n4a-bad", "data-verification": ok ? "passed" : "failed" },
        ok ? `passed: ${formatCount(report.verification_sample_size)} predictions, `
          + `${formatCount(report.array_values_verified)} array values, ${formatCount(report.artifacts_verified)} artifacts`
          : `${formatCount(report.verification_mismatches)} mismatches`)],
      ["New workspace", String(report.output_path || "")],
      ["Original kept at", String(report.backup_path || "(unchanged, in place)")],
    ], "result"));
}

/** ETA from progress and elapsed time (display only). */
function eta(/** @type {Model} */ model) {
  const p = model.get("progress") || 0;
  const elapsed = model.get("elapsed") || 0;
  if (model.get("state") !== "running" || p < 0.05 || elapsed < 1) return "";
  return `About ${formatDuration(Math.max(0, (elapsed / p) * (1 - p)))} left`;
}

/** @param {{model: Model, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "n4a-widget n4a-migration-wizard" });
  const header = h("div", { class: "n4a-header" });
  const banner = h("div", { class: "n4a-banner", "data-banner": "migration" });
  const current = h("div", { class: "n4a-section" });
  const outputBox = /** @type {HTMLInputElement} */ (h("input", {
    class: "n4a-input", type: "text", placeholder: "(empty: replace in place, keep the original as a backup)",
    "data-input": "output",
  }));
  const onOutput = () => sendAction(model, "set_output", { output: outputBox.value.trim() });
  outputBox.addEventListener("change", onOutput);
  const backupNote = h("div", { class: "n4a-muted", "data-note": "backup" });
  const etaLine = h("div", { class: "n4a-muted", "data-eta": "" });
  const body = h("div", {});
  const progress = progressPanel(model);
  const errors = errorPanel(model);
  const untouched = h("div", { class: "n4a-ok", "data-note": "untouched" }, "Your original workspace is untouched.");
  const startButton = actionButton(model, "Start migration", "start", { kind: "primary" });
  const mainButtons = h("div", { class: "n4a-row", "data-buttons": "main" },
    actionButton(model, "Preview (dry run)", "dry_run"), startButton);
  const outputRow = h("div", { class: "n4a-row", "data-row": "output" }, h("label", {}, "Output folder: "), outputBox);
  const healthBox = h("div", { "data-section": "health" });
  /** @type {(() => void) | null} */
  let healthCleanup = null;
  const nextSteps = h("div", { class: "n4a-row", "data-buttons": "done" },
    actionButton(model, "Open StorageHealth", "open_storage_health", { kind: "primary" }));
  const midButtons = h("div", { class: "n4a-row", "data-buttons": "mid" },
    actionButton(model, "Dry run", "dry_run"),
    actionButton(model, "Resume", "resume", { kind: "primary" }),
    actionButton(model, "Roll back", "rollback", { kind: "danger" }));
  root.append(header, banner, current, outputRow, backupNote,
    errors.el, untouched, progress.el, etaLine, body, mainButtons, midButtons, nextSteps, healthBox);
  el.append(root);

  const draw = () => {
    const status = model.get("status") || {};
    const stats = model.get("stats") || {};
    const plan = model.get("plan") || {};
    const report = model.get("report") || {};
    const state = model.get("state");
    const mode = status.storage_mode;
    header.replaceChildren(
      h("span", { class: "n4a-title" }, "Migrate workspace"),
      storageModeBadge(mode),
      h("span", { class: "n4a-path" }, String(model.get("workspace_path") || "")),
    );
    const finished = report && report.dry_run === false && (report.state === "published" || report.state === "rolled_back");
    const needs = (mode === "legacy" || mode === "mid_migration") && !finished;
    banner.style.display = needs ? "" : "none";
    // A short label, then Python's sentence (which already says what happened): nothing said twice.
    banner.replaceChildren(
      h("strong", {}, mode === "mid_migration" ? "Unfinished migration: " : "Legacy storage: "),
      String(status.message || ""),
      mode === "mid_migration" ? " Resume finishes it; Roll back restores the original workspace." : "",
    );
    current.replaceChildren(facts([
      ["Format", `${status.format || "?"} (${status.layout || "?"})`],
      ["On disk", formatBytes(stats.size_bytes || 0)],
    ], "current"));
    if (outputBox !== document.activeElement) outputBox.value = String(model.get("output") || "");
    const out = String(model.get("output") || "");
    const backup = plan.backup_path;
    backupNote.textContent = out
      ? `The result is written to ${out}; the original workspace stays where it is, untouched.`
      : `The original workspace will be kept, renamed to ${backup || `${model.get("workspace_path")}.legacy-<timestamp>`}.`;
    body.replaceChildren(
      ...(plan.dry_run && plan.state === "planned" ? [planView(plan)] : []),
      ...(plan.dry_run && plan.state === "mid_migration" ? [h("div", { class: "n4a-section", "data-section": "plan" },
        ...(plan.warnings || []).map((/** @type {string} */ w) => h("div", {}, w)))] : []),
      ...(finished ? [resultView(report)] : []),
    );
    untouched.style.display = state === "error" || state === "cancelled" ? "" : "none";
    etaLine.textContent = eta(model);
    // Done: the form goes away (with an output folder the source is still legacy,
    // but there is nothing left to start); the next step is offered instead.
    const planned = Boolean(plan.dry_run && plan.state === "planned" && !(plan.errors || []).length);
    mainButtons.style.display = mode === "legacy" && !finished ? "" : "none";
    midButtons.style.display = mode === "mid_migration" && !finished ? "" : "none";
    outputRow.style.display = finished ? "none" : "";
    backupNote.style.display = finished ? "none" : "";
    current.style.display = finished ? "none" : "";
    const published = finished && report.state === "published";
    const healthOpen = Object.keys(model.get("health") || {}).length > 0;
    nextSteps.style.display = published && !healthOpen ? "" : "none";
    startButton.textContent = planned && plan.backup_path
      ? `Start migration (original kept as ${baseName(plan.backup_path)})` : "Start migration";
    setBusy(root, state === "running");
    startButton.disabled = state === "running" || !planned; // Start runs the previewed plan only
    startButton.title = planned ? "" : "Preview first: it shows what will be converted and where the original goes.";
    outputBox.disabled = state === "running" || mode !== "legacy";
    if (healthOpen && !healthCleanup) {
      healthCleanup = storageHealth.render({ model: healthModel(model), el: healthBox });
    }
  };
  draw();
  const dispose = onChange(model,
    ["status", "stats", "plan", "report", "state", "output", "progress", "elapsed", "workspace_path", "health"], draw);

  return () => {
    dispose();
    if (healthCleanup) healthCleanup();
    outputBox.removeEventListener("change", onOutput);
    progress.dispose();
    errors.dispose();
    root.remove();
  };
}

export default { render };
