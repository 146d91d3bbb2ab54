// @ts-check
/**
 * MergeStores front-end: source list (typed paths + sibling workspaces),
 * strategy, dataset filter, Preview -> Confirm, progress, per-source report.
 * Every change is sent to Python as an action; Python validates and decides.
 */
import {
  actionButton, errorPanel, formatBytes, formatCount, h, onChange, progressPanel, sendAction, setBusy, table,
} from "./lib/ui.js";

/** @typedef {import("./lib/ui.js").Model} Model */

/** @param {any} report */
function sourceTable(report) {
  const rows = (report.sources || []).map((/** @type {any} */ s) => [
    s.name, formatCount(s.predictions), formatCount(s.added), formatCount(s.removed), formatCount(s.conflicts),
    formatCount(s.kept_existing), formatCount(s.skipped), (s.datasets || []).join(", "),
  ]);
  const t = table(
    ["Source", "Predictions", report.dry_run ? "To add" : "Added", "Replaces", "Conflicts", "Target kept", "Skipped",
      "Datasets"],
    rows, { empty: "No sources" },
  );
  t.setAttribute("data-table", "sources");
  return t;
}

/** @param {any} report */
function conflictTable(report) {
  /** @type {string[][]} */
  const rows = [];
  for (const s of report.sources || []) {
    for (const c of s.conflict_details || []) {
      const k = c.key || {};
      const fmt = (/** @type {number | null} */ v) => (v === null || v === undefined ? "–" : v.toPrecision(4));
      rows.push([s.name, `${k.dataset_name} · ${k.model_name} · fold ${k.fold_id} · ${k.partition}`,
        fmt(c.source_score), fmt(c.target_score), c.winner === "source" ? "source replaces target" : "target kept"]);
    }
  }
  const t = table(["Source", "Conflict (dataset · model · fold · partition)", "Source score", "Target score", "Outcome"],
    rows.slice(0, 50), { empty: "No conflicts" });
  t.setAttribute("data-table", "conflicts");
  return t;
}

/** @param {any} report */
function summary(report) {
  const verb = report.dry_run ? "Will add" : "Added";
  return h("div", {
    class: "n4a-section", "data-summary": report.dry_run ? "preview" : "done", "data-added": String(report.added),
    "data-removed": String(report.removed), "data-conflicts": String(report.conflicts),
  },
    h("strong", {}, `${verb} ${formatCount(report.added)} prediction(s), replace ${formatCount(report.removed)}`),
    ` · ${formatCount(report.conflicts)} conflict(s) · target ${formatCount(report.predictions_before)} → `
    + `${formatCount(report.predictions_after)} predictions · ~${formatBytes(report.bytes)} of arrays`,
    report.dry_run ? h("div", { class: "n4a-muted" }, `plan ${report.plan_id}: nothing written yet`) : null);
}

/** @param {{model: Model, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "n4a-widget n4a-merge-stores" });
  const header = h("div", { class: "n4a-header" });
  const input = /** @type {HTMLInputElement} */ (h("input", {
    type: "text", class: "n4a-input", placeholder: "path/to/another/workspace", "data-input": "source",
  }));
  const add = () => {
    sendAction(model, "add_source", { path: input.value });
    input.value = "";
  };
  const onKey = (/** @type {KeyboardEvent} */ e) => {
    if (e.key === "Enter") add();
  };
  input.addEventListener("keydown", onKey);
  const addButton = h("button", { class: "n4a-btn n4a-btn-plain", type: "button", "data-action": "add_source" }, "Add");
  addButton.addEventListener("click", add);
  const sourcesBox = h("div", { class: "n4a-section", "data-list": "sources" });
  const siblingsBox = h("div", { class: "n4a-section", "data-list": "siblings" });
  const strategyBox = h("div", { class: "n4a-section", "data-list": "strategies" });
  const datasetBox = h("div", { class: "n4a-section", "data-list": "datasets" });
  const previewButton = actionButton(model, "Preview", "preview", { kind: "primary" });
  const confirmButton = actionButton(model, "Confirm merge", "confirm", { kind: "danger" });
  const result = h("div", {});
  const progress = progressPanel(model);
  const errors = errorPanel(model);
  root.append(header,
    h("div", { class: "n4a-section" }, h("div", { class: "n4a-section-title" }, "Sources"),
      h("div", { class: "n4a-row" }, input, addButton)),
    sourcesBox, siblingsBox, strategyBox, datasetBox,
    h("div", { class: "n4a-row" }, previewButton, confirmButton),
    errors.el, progress.el, result);
  el.append(root);

  const draw = () => {
    header.replaceChildren(
      h("span", { class: "n4a-title" }, "Merge workspaces into"),
      h("span", { class: "n4a-path" }, String(model.get("workspace_path") || "")),
    );
    const sources = /** @type {string[]} */ (model.get("sources") || []);
    sourcesBox.replaceChildren(...(sources.length ? sources.map((s, i) => h("div", { class: "n4a-row", "data-source": s },
      h("span", {}, `${i + 1}. ${s}`),
      h("button", {
        class: "n4a-btn n4a-btn-plain", type: "button", "data-action": "remove_source",
        onclick: () => sendAction(model, "remove_source", { path: s }),
      }, "Remove"))) : [h("span", { class: "n4a-muted" }, "No source yet: type a path or pick a workspace below.")]));
    const siblings = /** @type {any[]} */ (model.get("siblings") || []);
    siblingsBox.replaceChildren(...(siblings.length ? [
      h("div", { class: "n4a-section-title" }, "Workspaces next to this one"),
      ...siblings.map((s) => h("div", { class: "n4a-row", "data-sibling": s.path },
        h("button", {
          class: "n4a-btn n4a-btn-plain", type: "button", "data-action": "add_sibling",
          onclick: () => sendAction(model, "add_source", { path: s.path }),
        }, "+ Add"),
        h("span", {}, ` ${s.name}`),
        h("span", { class: "n4a-muted" }, s.predictions === null ? "" : ` (${formatCount(s.predictions)} predictions)`))),
    ] : []));
    const strategies = /** @type {Record<string, string>} */ (model.get("strategies") || {});
    const current = model.get("strategy");
    strategyBox.replaceChildren(h("div", { class: "n4a-section-title" }, "When both hold the same model result"),
      ...Object.entries(strategies).map(([name, text]) => h("label", { class: "n4a-row" },
        h("input", {
          type: "radio", name: "n4a-merge-strategy", value: name, checked: name === current, "data-strategy": name,
          onchange: () => sendAction(model, "set_strategy", { strategy: name }),
        }),
        h("strong", {}, ` ${name}`), h("span", { class: "n4a-muted" }, ` — ${text}`))));
    const available = /** @type {string[]} */ (model.get("available_datasets") || []);
    const chosen = new Set(/** @type {string[]} */ (model.get("datasets") || []));
    datasetBox.replaceChildren(...(available.length ? [
      h("div", { class: "n4a-section-title" }, "Datasets (none ticked = all)"),
      ...available.map((d) => h("label", { class: "n4a-row" },
        h("input", {
          type: "checkbox", checked: chosen.has(d), "data-dataset": d,
          onchange: (/** @type {Event} */ e) => {
            const next = new Set(chosen);
            if (/** @type {HTMLInputElement} */ (e.target).checked) next.add(d); else next.delete(d);
            sendAction(model, "set_datasets", { datasets: available.filter((x) => next.has(x)) });
          },
        }), ` ${d}`)),
    ] : []));
    const preview = model.get("preview_report") || {};
    const report = model.get("report") || {};
    const shown = preview.plan_id ? preview : report;
    result.replaceChildren(...(shown.plan_id ? [summary(shown), sourceTable(shown), conflictTable(shown)] : []));
    const running = model.get("state") === "running";
    setBusy(root, running);
    /** @type {HTMLButtonElement} */ (previewButton).disabled = running || !sources.length;
    /** @type {HTMLButtonElement} */ (confirmButton).disabled = running || !model.get("plan_id");
  };
  draw();
  const dispose = onChange(model, ["sources", "siblings", "strategy", "strategies", "datasets", "available_datasets",
    "plan_id", "preview_report", "report", "state", "workspace_path"], draw);

  return () => {
    dispose();
    input.removeEventListener("keydown", onKey);
    addButton.removeEventListener("click", add);
    progress.dispose();
    errors.dispose();
    root.remove();
  };
}

export default { render };
