// @ts-check
/**
 * ExportPicker front-end: dataset checkboxes, filter dropdowns, destination
 * field, Export.  Form inputs are written to the model's traits (Python reads
 * them); Export is sent to Python, which runs the job and fills `report`.
 */
import {
  actionButton, errorPanel, formatBytes, formatCount, h, onChange, progressPanel, setBusy,
} from "./lib/ui.js";

/** @typedef {import("./lib/ui.js").Model} Model */

/**
 * One value of Jupyter's page config (JupyterLab and Notebook 7), "" elsewhere.
 * @param {string} key
 */
export function pageConfig(key) {
  try {
    const el = document.getElementById("jupyter-config-data");
    const value = el ? JSON.parse(el.textContent || "{}")[key] : "";
    return typeof value === "string" ? value : "";
  } catch {
    return "";
  }
}

/** Jupyter's base URL (from the page config), "/" elsewhere. */
export function baseUrl() {
  try {
    const el = document.getElementById("jupyter-config-data");
    if (el) {
      const config = JSON.parse(el.textContent || "{}");
      if (typeof config.baseUrl === "string" && config.baseUrl) return config.baseUrl;
    }
  } catch {
    // no page config: not JupyterLab
  }
  return "/";
}

/**
 * `files/` link for a path relative to the server root.
 * @param {string} relpath
 */
export function downloadHref(relpath) {
  const base = baseUrl().replace(/\/?$/, "/");
  return `${base}files/${relpath.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * @param {Model} model
 * @param {string} name
 * @param {any} value
 */
function setTrait(model, name, value) {
  model.set(name, value);
  model.save_changes();
}

/**
 * A <select> with "any" first; writes the trait on change.
 * @param {Model} model
 * @param {string} trait
 * @param {string} label
 * @param {string[]} values
 */
function filterSelect(model, trait, label, values) {
  const current = String(model.get(trait) || "");
  const select = /** @type {HTMLSelectElement} */ (h("select", { class: "n4a-select", "data-filter": trait },
    h("option", { value: "" }, "any"),
    ...values.map((v) => h("option", { value: v }, v))));
  select.value = values.includes(current) ? current : "";
  select.addEventListener("change", () => setTrait(model, trait, select.value));
  return h("label", { class: "n4a-field" }, `${label} `, select);
}

/** @param {{model: Model, el: HTMLElement}} ctx */
function render({ model, el }) {
  // Download links are relative to the server root; only the page knows it.
  const serverRoot = pageConfig("serverRoot");
  if (serverRoot && model.get("server_root") !== serverRoot) {
    model.set("server_root", serverRoot);
    model.save_changes();
  }
  const root = h("div", { class: "n4a-widget n4a-export-picker" });
  const header = h("div", { class: "n4a-header" },
    h("span", { class: "n4a-title" }, "Export predictions"),
    h("span", { class: "n4a-path" }, String(model.get("workspace_path") || "")));
  const datasetBox = h("div", { class: "n4a-section", "data-section": "datasets" });
  const filterBox = h("div", { class: "n4a-section n4a-row", "data-section": "filters" });
  const destInput = /** @type {HTMLInputElement} */ (h("input", {
    class: "n4a-input", type: "text", "data-field": "dest", size: "60",
  }));
  const formatSelect = /** @type {HTMLSelectElement} */ (h("select", { class: "n4a-select", "data-field": "format" },
    ...["auto", "parquet", "zip", "folder"].map((f) => h("option", { value: f }, f))));
  const overwriteBox = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", "data-field": "overwrite" }));
  const onDest = () => setTrait(model, "dest", destInput.value.trim());
  const onFormat = () => setTrait(model, "export_format", formatSelect.value);
  const onOverwrite = () => setTrait(model, "overwrite", overwriteBox.checked);
  destInput.addEventListener("change", onDest);
  formatSelect.addEventListener("change", onFormat);
  overwriteBox.addEventListener("change", onOverwrite);
  const destRow = h("div", { class: "n4a-section n4a-row" },
    h("label", { class: "n4a-field" }, "Destination ", destInput),
    h("label", { class: "n4a-field" }, "Format ", formatSelect),
    h("label", { class: "n4a-field" }, overwriteBox, " overwrite"));
  const exportButton = actionButton(model, "Export", "export", {
    kind: "primary",
    args: () => ({ dest: destInput.value.trim(), format: formatSelect.value, overwrite: overwriteBox.checked }),
  });
  const buttons = h("div", { class: "n4a-row" }, exportButton, actionButton(model, "Refresh", "refresh"));
  const progress = progressPanel(model);
  const errors = errorPanel(model);
  const result = h("div", { class: "n4a-section", "data-section": "result" });
  root.append(header, datasetBox, filterBox, destRow, buttons, errors.el, progress.el, result);
  el.append(root);

  const drawDatasets = () => {
    const choices = model.get("choices") || {};
    const datasets = /** @type {any[]} */ (choices.datasets || []);
    const selected = new Set(/** @type {string[]} */ (model.get("selected") || []));
    const rows = datasets.map((d) => {
      const box = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", "data-dataset": d.name }));
      box.checked = selected.has(d.name);
      box.addEventListener("change", () => {
        const now = new Set(/** @type {string[]} */ (model.get("selected") || []));
        if (box.checked) now.add(d.name);
        else now.delete(d.name);
        setTrait(model, "selected", datasets.map((x) => x.name).filter((n) => now.has(n)));
      });
      const extra = d.pending_tombstones ? ` · ${formatCount(d.pending_tombstones)} pending deletes (left out)` : "";
      return h("label", { class: "n4a-check" }, box, ` ${d.name} `,
        h("span", { class: "n4a-muted" },
          `${formatCount(d.prediction_count)} predictions · ${formatBytes(d.parquet_size_bytes)}${extra}`));
    });
    const total = datasets.filter((d) => selected.has(d.name)).reduce((s, d) => s + d.prediction_count, 0);
    datasetBox.replaceChildren(
      h("div", { class: "n4a-section-title" },
        `Datasets (${selected.size}/${datasets.length} selected, ${formatCount(total)} predictions) `,
        h("button", { class: "n4a-btn n4a-btn-plain", type: "button", "data-action": "select_all",
          onclick: () => setTrait(model, "selected", datasets.map((d) => d.name)) }, "All"),
        h("button", { class: "n4a-btn n4a-btn-plain", type: "button", "data-action": "select_none",
          onclick: () => setTrait(model, "selected", []) }, "None")),
      rows.length ? h("div", { class: "n4a-checklist" }, ...rows) : h("span", { class: "n4a-muted" }, "No datasets"),
    );
    filterBox.replaceChildren(
      filterSelect(model, "partition", "Partition", choices.partitions || []),
      filterSelect(model, "model_name", "Model", choices.models || []),
      filterSelect(model, "fold_id", "Fold", choices.folds || []),
    );
    setBusy(root, model.get("state") === "running");
  };

  const drawForm = () => {
    if (document.activeElement !== destInput) destInput.value = String(model.get("dest") || "");
    destInput.placeholder = String(model.get("default_dest") || "");
    formatSelect.value = String(model.get("export_format") || "auto");
    overwriteBox.checked = Boolean(model.get("overwrite"));
  };

  const drawResult = () => {
    const report = model.get("report") || {};
    const state = model.get("state");
    if (!report.files || model.get("job_name") !== "Export" || state !== "done") {
      result.replaceChildren();
      setBusy(root, state === "running");
      return;
    }
    const rel = String(model.get("download_path") || "");
    const items = report.files.map((/** @type {any} */ f) => h("li", {},
      `${f.dataset}: ${formatCount(f.rows)} rows, ${formatBytes(f.bytes)} → ${f.member ? `${f.member} in ` : ""}`,
      h("code", {}, f.member ? report.dest : f.path)));
    const parts = [
      h("div", { class: "n4a-ok", "data-result": "done" },
        `Exported ${formatCount(report.total_rows)} predictions (${formatBytes(report.total_bytes)}) in `
        + `${Number(report.duration_seconds || 0).toFixed(1)} s`),
      h("ul", { class: "n4a-files" }, ...items),
      rel
        ? h("a", {
          class: "n4a-btn n4a-btn-primary n4a-link-btn", href: downloadHref(rel), download: rel.split("/").pop(),
          "data-link": "download", target: "_blank", rel: "noopener",
          style: { display: "inline-block", textDecoration: "none", marginTop: "6px" },
        }, `⬇ Download ${rel.split("/").pop()}`)
        : h("div", { class: "n4a-muted", "data-note": "no-link" }, String(model.get("download_reason") || "")),
      report.excluded_tombstoned
        ? h("div", { class: "n4a-muted" }, `${formatCount(report.excluded_tombstoned)} deleted predictions left out.`)
        : null,
    ];
    result.replaceChildren(.../** @type {HTMLElement[]} */ (parts.filter((p) => p !== null)));
    setBusy(root, false);
  };

  drawDatasets();
  drawForm();
  drawResult();
  const disposers = [
    onChange(model, ["choices", "selected", "partition", "model_name", "fold_id", "state"], drawDatasets),
    onChange(model, ["dest", "default_dest", "export_format", "overwrite"], drawForm),
    onChange(model, ["report", "state", "download_path", "download_reason", "job_name"], drawResult),
  ];

  return () => {
    for (const d of disposers) d();
    destInput.removeEventListener("change", onDest);
    formatSelect.removeEventListener("change", onFormat);
    overwriteBox.removeEventListener("change", onOverwrite);
    progress.dispose();
    errors.dispose();
    root.remove();
  };
}

export default { render };
