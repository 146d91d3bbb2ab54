// @ts-check
/**
 * MergeStores front-end: source list (typed paths, sibling workspaces and .zip archives),
 * strategy, dataset filter, Preview -> Confirm, progress, per-source report, the
 * conflicts (capped, with the key parts that tell rows apart) and the chains and
 * model files the merge adds and removes.
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

/** Rows shown per list; the full counts are always given ("50 of 98"). */
const SHOWN = 50;

/** Conflict-key parts, in the order they are shown when they tell rows apart. */
const KEY_PARTS = [
  ["dataset_name", "dataset"], ["model_name", "model"], ["model_class", "class"], ["fold_id", "fold"],
  ["partition", "partition"], ["preprocessings", "preprocessing"], ["branch_id", "branch"],
  ["refit_context", "refit"], ["metric", "metric"], ["specification", "spec"],
];

/**
 * A capped, scrollable list with its count ("Showing 50 of 98 conflicts").
 * @param {string} name @param {string} noun @param {number} total @param {HTMLElement} body
 * @param {number} shown
 */
function capped(name, noun, total, body, shown) {
  return h("div", { class: "n4a-section", "data-list": name },
    h("div", { class: "n4a-muted", "data-count": name },
      total > shown ? `Showing ${formatCount(shown)} of ${formatCount(total)} ${noun}` : `${formatCount(total)} ${noun}`),
    h("div", { class: "n4a-scroll", style: "max-height: 16em; overflow: auto;" }, body));
}

/** @param {any} report */
function conflictTable(report) {
  /** @type {{source: string, c: any}[]} */
  const all = [];
  for (const s of report.sources || []) for (const c of s.conflict_details || []) all.push({ source: s.name, c });
  const listed = all.slice(0, SHOWN);
  // Show the dataset and model always, and every other key part whose value differs between the rows listed.
  const parts = KEY_PARTS.filter(([k], i) => i < 2
    || new Set(listed.map(({ c }) => String((c.key || {})[k] ?? ""))).size > 1);
  const fmt = (/** @type {number | null} */ v) => (v === null || v === undefined ? "–" : v.toPrecision(4));
  const rows = listed.map(({ source, c }) => [source, parts.map(([k]) => String((c.key || {})[k] ?? "–")).join(" · "),
    fmt(c.source_score), fmt(c.target_score),
    c.winner === "source" ? "source replaces the target's" : "target's kept"]);
  const t = table(["Source", `Conflict (${parts.map(([, label]) => label).join(" · ")})`, "Source score",
    "Target score", "Outcome"], rows, { empty: "No conflicts" });
  t.setAttribute("data-table", "conflicts");
  return capped("conflicts", "conflicts", Number(report.conflicts ?? all.length), t, listed.length);
}

/** @param {any} report */
function lineageTables(report) {
  const chains = /** @type {any[]} */ (report.chain_changes || []);
  const arts = /** @type {any[]} */ (report.artifact_changes || []);
  const change = (/** @type {string} */ c) => (c === "added" ? (report.dry_run ? "to add" : "added")
    : (report.dry_run ? "to remove" : "removed"));
  const chainRows = chains.slice(0, SHOWN).map((c) => [change(c.change), c.dataset, c.model_class.split(".").pop() || "",
    c.preprocessings || "–", formatCount(c.predictions), c.source || "target"]);
  const ct = table(["Chain", "Dataset", "Model", "Preprocessing", "Predictions", "From"], chainRows,
    { empty: "No chain added or removed" });
  ct.setAttribute("data-table", "chains");
  const artRows = arts.slice(0, SHOWN).map((a) => [change(a.change), a.operator_class.split(".").pop() || "",
    a.artifact_type, formatBytes(a.size_bytes), a.source || "target"]);
  const at = table(["Model file", "Class", "Type", "Bytes", "From"], artRows, { empty: "No model file added or removed" });
  at.setAttribute("data-table", "artifacts");
  const nChains = Number(report.chains_added || 0) + Number(report.chains_removed || 0);
  const nArts = Number(report.artifacts_added || 0) + Number(report.artifacts_removed || 0);
  return [capped("chains", "chains (models with their preprocessing)", nChains, ct, chainRows.length),
    capped("artifacts", "model files", nArts, at, artRows.length)];
}

/** @param {any} report */
function summary(report) {
  const dry = report.dry_run;
  return h("div", {
    class: "n4a-section", "data-summary": dry ? "preview" : "done", "data-added": String(report.added),
    "data-removed": String(report.removed), "data-conflicts": String(report.conflicts),
  },
    h("strong", {}, `${dry ? "Will add" : "Added"} ${formatCount(report.added)} prediction(s)`
      + (report.removed ? `, replacing ${formatCount(report.removed)} of the target's` : "")),
    ` · ${formatCount(report.conflicts)} conflict(s) · target ${formatCount(report.predictions_before)} → `
    + `${formatCount(report.predictions_after)} predictions · ~${formatBytes(report.bytes)} of arrays`,
    h("div", { "data-summary": "lineage" },
      `Models: ${formatCount(report.chains_added ?? 0)} chain(s) and ${formatCount(report.artifacts_added ?? 0)} model `
      + `file(s) (${formatBytes(report.artifact_bytes_added ?? 0)}) ${dry ? "to add" : "added"}; `
      + `${formatCount(report.chains_removed ?? 0)} chain(s) and ${formatCount(report.artifacts_removed ?? 0)} model `
      + `file(s) (${formatBytes(report.artifact_bytes_removed ?? 0)}) ${dry ? "to remove" : "removed"} `
      + "(no longer used by any prediction)."),
    dry ? h("div", { class: "n4a-muted" }, `plan ${report.plan_id}: nothing written yet`) : null);
}

/** @param {{model: Model, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "n4a-widget n4a-merge-stores" });
  const header = h("div", { class: "n4a-header" });
  const input = /** @type {HTMLInputElement} */ (h("input", {
    type: "text", class: "n4a-input", placeholder: "path/to/another/workspace or workspace.zip", "data-input": "source",
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
    const infos = /** @type {any[]} */ (model.get("source_info") || []);
    const describe = (/** @type {string} */ s) => {
      const info = infos.find((i) => i.path === s);
      return info ? ` (${info.archive ? "archive, " : ""}${formatCount(info.predictions)} predictions)` : "";
    };
    sourcesBox.replaceChildren(...(sources.length ? sources.map((s, i) => h("div", { class: "n4a-row", "data-source": s },
      h("span", {}, `${i + 1}. ${s}`), h("span", { class: "n4a-muted" }, describe(s)),
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
        h("span", { class: "n4a-muted" }, s.predictions === null || s.predictions === undefined
          ? (s.archive ? " (.zip archive)" : "") : ` (${formatCount(s.predictions)} predictions)`))),
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
    result.replaceChildren(...(shown.plan_id
      ? [summary(shown), sourceTable(shown), conflictTable(shown), ...lineageTables(shown)] : []));
    const running = model.get("state") === "running";
    setBusy(root, running);
    /** @type {HTMLButtonElement} */ (previewButton).disabled = running || !sources.length;
    /** @type {HTMLButtonElement} */ (confirmButton).disabled = running || !model.get("plan_id");
    // Red only when the merge replaces (deletes) target predictions; blue when it only adds.
    const pending = preview.plan_id ? preview : {};
    const kind = (pending.removed || 0) > 0 ? "danger" : (pending.added || 0) > 0 ? "primary" : "plain";
    confirmButton.className = `n4a-btn n4a-btn-${kind}`;
    confirmButton.textContent = pending.plan_id && !(pending.added || pending.removed)
      ? "Confirm merge (nothing to add)" : "Confirm merge";
  };
  draw();
  const dispose = onChange(model, ["sources", "source_info", "siblings", "strategy", "strategies", "datasets", "available_datasets",
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
