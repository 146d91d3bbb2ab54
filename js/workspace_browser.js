// @ts-check
/**
 * WorkspaceBrowser front-end: draws the `rows`, `totals`, `health`,
 * `preview`, `report` and `current` traits that Python fills.  Sorting and
 * filtering are view state kept here; every decision (which rows a bulk
 * action takes, what is allowed) is Python's: buttons send actions.
 */
import {
  actionButton, badge, errorPanel, formatBytes, formatCount, h, onChange, progressPanel, setBusy,
  storageModeBadge, table,
} from "./lib/ui.js";

/** @typedef {import("./lib/ui.js").Model} Model */

/** Columns: [label, sort key]. */
const COLUMNS = [
  ["Workspace", "path"], ["Mode", "storage_mode"], ["Size", "size_bytes"], ["Predictions", "total_predictions"],
  ["Datasets", "datasets"], ["Last run", "last_run_at"], ["Health", "health"],
];

/** @param {string} path @param {string} root */
function relative(path, root) {
  if (root && path.startsWith(root)) {
    const rest = path.slice(root.length).replace(/^[\\/]/, "");
    return rest || ".";
  }
  return path;
}

/**
 * @param {any} row
 * @param {string} key
 * @param {Record<string, any>} health
 */
function sortValue(row, key, health) {
  if (key === "datasets") return (row.datasets || []).length;
  if (key === "health") {
    const s = health[row.path];
    return s ? (s.healthy ? 2 : 1) : 0;
  }
  const v = row[key];
  return v === null || v === undefined ? "" : v;
}

/** @param {any} summary @param {any} row */
function healthCell(summary, row) {
  if (row.error) return h("span", { class: "n4a-bad", "data-health": "error", title: row.error }, "Unreadable");
  if (row.storage_mode !== "migrated" || row.is_archive) return h("span", { class: "n4a-muted", "data-health": "n/a" }, "–");
  if (!summary) return h("span", { class: "n4a-muted", "data-health": "pending" }, "…");
  if (summary.error) return h("span", { class: "n4a-bad", "data-health": "error", title: summary.error }, "Error");
  if (summary.healthy) {
    const pending = summary.pending_tombstones ? ` · ${formatCount(summary.pending_tombstones)} pending deletes` : "";
    return h("span", { class: "n4a-ok", "data-health": "healthy" }, `Healthy${pending}`);
  }
  const parts = [];
  if (summary.orphans) parts.push(`${formatCount(summary.orphans)} orphans`);
  if (summary.corrupt_files) parts.push(`${summary.corrupt_files} corrupt files`);
  return h("span", { class: "n4a-bad", "data-health": "problems" }, parts.join(" · ") || "Problems");
}

/** @param {Model} model @param {any} row */
function openButtons(model, row) {
  if (row.is_archive || row.error) return h("span", {});
  /** @type {[string, string][]} */
  const kinds = row.storage_mode === "migrated"
    ? [["Health", "health"], ["Maintenance", "maintenance"], ["SQL", "sql"]]
    : [["Migrate…", "migration"]];
  return h("span", { class: "n4a-row" }, ...kinds.map(([label, kind]) => actionButton(model, label, "open_widget", {
    args: () => ({ path: row.path, kind }), title: `Open ${relative(row.path, String(model.get("root") || ""))} below`,
  })));
}

/** @param {any} report @param {string} root @param {string} name */
function planTable(report, root, name) {
  const rows = (report.rows || []).map((/** @type {any} */ r) => {
    const tr = [relative(r.path, root), h("span", { "data-outcome": r.outcome }, r.outcome), r.message || "",
      r.output_path && r.output_path !== r.path ? relative(r.output_path, root) : ""];
    return tr;
  });
  const t = table(["Workspace", "Outcome", "Details", "Output"], rows, { empty: "No workspace to act on" });
  t.setAttribute("data-table", name);
  return t;
}

/** @param {{model: Model, el: HTMLElement}} ctx */
function render({ model, el }) {
  let sortKey = "path";
  let sortDir = 1;
  let filterText = "";
  let filterMode = "";

  const root = h("div", { class: "n4a-widget n4a-workspace-browser" });
  const header = h("div", { class: "n4a-header" });
  const totals = h("div", { class: "n4a-section", "data-totals": "" });
  const filterInput = /** @type {HTMLInputElement} */ (h("input", {
    class: "n4a-input", type: "search", placeholder: "Filter by path or dataset", "data-filter": "text",
  }));
  const modeSelect = /** @type {HTMLSelectElement} */ (h("select", { class: "n4a-select", "data-filter": "mode" },
    ...[["", "All modes"], ["migrated", "Migrated"], ["legacy", "Legacy"], ["mid_migration", "Mid-migration"],
      ["new", "New"], ["unknown", "Unreadable"], ["archive", "Archives"]]
      .map(([v, label]) => h("option", { value: v }, label))));
  const onFilter = () => {
    filterText = filterInput.value.trim().toLowerCase();
    filterMode = modeSelect.value;
    drawTable();
  };
  filterInput.addEventListener("input", onFilter);
  modeSelect.addEventListener("change", onFilter);
  const toolbar = h("div", { class: "n4a-row" }, filterInput, modeSelect, actionButton(model, "Rescan", "refresh"));
  const tableBox = h("div", { class: "n4a-section", "data-section": "table" });

  const inPlace = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", "data-field": "in_place" }));
  const outputRoot = /** @type {HTMLInputElement} */ (h("input", {
    class: "n4a-input", type: "text", placeholder: "Output folder (default: <name>-migrated beside each)",
    "data-field": "output_root",
  }));
  const mergeTarget = /** @type {HTMLSelectElement} */ (h("select", { class: "n4a-select", "data-field": "merge_target" }));
  const bulkBox = h("div", { class: "n4a-section", "data-section": "bulk" },
    h("div", { class: "n4a-section-title" }, "Bulk actions"),
    h("div", { class: "n4a-row" },
      actionButton(model, "Preview: migrate every legacy workspace", "preview_migrate", {
        kind: "primary", args: () => ({ in_place: inPlace.checked, output_root: outputRoot.value.trim() || null }),
      }),
      h("label", {}, inPlace, " in place (keeps the original as a backup)"), outputRoot),
    h("div", { class: "n4a-row" }, actionButton(model, "Preview: compact all", "preview_compact")),
    h("div", { class: "n4a-row" },
      actionButton(model, "Preview: merge the selected into", "preview_merge", {
        args: () => ({ target: mergeTarget.value, sources: model.get("selected") || [] }),
      }), mergeTarget));
  const previewBox = h("div", { class: "n4a-section", "data-section": "preview" });
  const currentBox = h("div", { class: "n4a-section", "data-current": "" });
  const resultBox = h("div", { class: "n4a-section", "data-section": "result" });
  const skippedBox = h("div", { class: "n4a-section n4a-muted", "data-section": "skipped" });
  const progress = progressPanel(model);
  const errors = errorPanel(model);
  root.append(header, totals, errors.el, progress.el, currentBox, toolbar, tableBox, bulkBox, previewBox, resultBox,
    skippedBox);
  el.append(root);

  /** @param {any} row */
  const visible = (row) => {
    if (filterMode === "archive" ? !row.is_archive : filterMode && row.storage_mode !== filterMode) return false;
    if (!filterText) return true;
    const hay = `${row.path} ${(row.datasets || []).join(" ")} ${row.format}`.toLowerCase();
    return hay.includes(filterText);
  };

  const drawTable = () => {
    const rows = /** @type {any[]} */ (model.get("rows") || []);
    const health = model.get("health") || {};
    const selected = new Set(model.get("selected") || []);
    const rootPath = String(model.get("root") || "");
    const largest = Math.max(1, ...rows.map((r) => r.size_bytes || 0));
    const shown = rows.filter(visible).sort((a, b) => {
      const x = sortValue(a, sortKey, health);
      const y = sortValue(b, sortKey, health);
      return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
    });
    const thead = h("thead", {}, h("tr", {}, h("th", {}, ""),
      ...COLUMNS.map(([label, key]) => h("th", {
        class: "n4a-sortable", "data-sort": key, title: "Sort",
        onclick: () => {
          sortDir = sortKey === key ? -sortDir : 1;
          sortKey = key;
          drawTable();
        },
      }, label + (sortKey === key ? (sortDir > 0 ? " ▲" : " ▼") : ""))), h("th", {}, "Open")));
    const tbody = h("tbody", {});
    if (!shown.length) {
      tbody.append(h("tr", {}, h("td", { colspan: String(COLUMNS.length + 2), class: "n4a-empty" },
        rows.length ? "No workspace matches the filter" : "No workspace found (yet)")));
    }
    for (const row of shown) {
      const box = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", "data-select": row.path }));
      box.checked = selected.has(row.path);
      box.addEventListener("change", () => {
        const now = new Set(model.get("selected") || []);
        if (box.checked) now.add(row.path);
        else now.delete(row.path);
        model.set("selected", [...now]);
        model.save_changes();
      });
      const bytes = row.size_bytes || 0;
      const name = relative(row.path, rootPath) + (row.is_archive && row.archive_member ? `!${row.archive_member}` : "");
      tbody.append(h("tr", { "data-row": row.path },
        h("td", {}, box),
        h("td", { title: row.message || "" }, name, row.is_archive ? badge("zip", "grey") : null),
        h("td", {}, storageModeBadge(row.storage_mode === "unknown" ? "" : row.storage_mode)),
        h("td", {}, h("div", { class: "n4a-hbar-track", title: formatBytes(bytes) }, h("div", {
          class: "n4a-hbar", "data-size-bar": String(bytes),
          style: { width: `${Math.max(bytes > 0 ? 2 : 0, Math.round((100 * bytes) / largest))}%` },
        })), formatBytes(bytes)),
        h("td", {}, row.total_predictions === null ? "?" : formatCount(row.total_predictions)),
        h("td", { title: (row.datasets || []).join(", ") }, formatCount((row.datasets || []).length)),
        h("td", {}, row.last_run_at ? String(row.last_run_at).slice(0, 19).replace("T", " ") : "–"),
        h("td", {}, healthCell(health[row.path], row)),
        h("td", {}, openButtons(model, row))));
    }
    const t = h("table", { class: "n4a-table", "data-table": "workspaces" }, thead, tbody);
    tableBox.replaceChildren(t);
    const current = mergeTarget.value;
    mergeTarget.replaceChildren(h("option", { value: "" }, "target workspace…"),
      ...rows.filter((r) => r.storage_mode === "migrated" && !r.is_archive && !r.error)
        .map((r) => h("option", { value: r.path }, relative(r.path, rootPath))));
    mergeTarget.value = current;
    setBusy(root, model.get("state") === "running");
  };

  const drawRest = () => {
    const t = model.get("totals") || {};
    const rootPath = String(model.get("root") || "");
    header.replaceChildren(h("span", { class: "n4a-title" }, "Workspaces"), h("span", { class: "n4a-path" }, rootPath));
    totals.replaceChildren(t.workspace_count === undefined ? h("span", { class: "n4a-muted" }, "Scanning…") : h("span", {},
      `${formatCount(t.workspace_count)} workspaces · ${formatBytes(t.total_bytes)} on disk · `,
      h("span", { "data-total": "legacy" }, `${formatCount(t.legacy_count)} need a migration (${formatBytes(t.legacy_bytes)})`),
      " · ", h("span", { "data-total": "reclaimable" }, `${formatBytes(t.reclaimable_bytes)} reclaimable`),
      t.archive_count ? ` · ${formatCount(t.archive_count)} archives` : "",
      t.cancelled ? " · scan cancelled (incomplete)" : ""));
    const pending = model.get("preview") || {};
    if (pending.report) {
      const r = pending.report;
      previewBox.style.display = "";
      previewBox.replaceChildren(
        h("div", { class: "n4a-section-title" },
          `Preview: ${pending.operation} · ${formatCount(r.planned)} planned, ${formatCount(r.skipped)} skipped, `
          + `${formatCount(r.failed)} failed (dry run: nothing written)`),
        planTable(r, rootPath, "preview"),
        h("div", { class: "n4a-row" },
          actionButton(model, `Confirm: ${pending.operation} ${formatCount(r.planned)} workspaces`, "confirm", { kind: "danger" }),
          actionButton(model, "Discard", "discard_preview")));
    } else {
      previewBox.style.display = "none";
      previewBox.replaceChildren();
    }
    const cur = model.get("current") || {};
    if (cur.path && model.get("state") === "running") {
      currentBox.style.display = "";
      currentBox.replaceChildren(h("span", {}, `Workspace ${cur.index + 1}/${cur.count}: ${relative(cur.path, rootPath)} · `
        + `${Math.round(100 * (cur.fraction || 0))}% · ${cur.message || ""}`));
    } else {
      currentBox.style.display = "none";
    }
    const report = model.get("report") || {};
    if (report.rows) {
      resultBox.style.display = "";
      resultBox.replaceChildren(h("div", { class: "n4a-section-title" },
        `${report.operation}: ${formatCount(report.done)} done, ${formatCount(report.failed)} failed, `
        + `${formatCount(report.skipped)} skipped${report.cancelled ? " (cancelled)" : ""}`),
      planTable(report, rootPath, "result"));
    } else {
      resultBox.style.display = "none";
    }
    const skipped = model.get("skipped") || [];
    skippedBox.replaceChildren(...skipped.map((/** @type {any} */ s) => h("div", { "data-skipped": s.path },
      `Skipped ${relative(s.path, rootPath)}: ${s.reason}`)));
    setBusy(root, model.get("state") === "running");
  };

  drawTable();
  drawRest();
  const disposeTable = onChange(model, ["rows", "health", "selected", "state", "root"], drawTable);
  const disposeRest = onChange(model, ["totals", "preview", "report", "current", "skipped", "state", "root"], drawRest);

  return () => {
    disposeTable();
    disposeRest();
    filterInput.removeEventListener("input", onFilter);
    modeSelect.removeEventListener("change", onFilter);
    progress.dispose();
    errors.dispose();
    root.remove();
  };
}


export default { render };
