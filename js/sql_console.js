// @ts-check
/**
 * SqlConsole front-end: editor, schema sidebar, examples, paged results,
 * history and export.  Result pages arrive as Arrow IPC buffers in custom
 * messages ({type: "page"}); Python decides everything (the SQL engine, the
 * limits, what is allowed).  This file only draws and forwards clicks.
 */
import { tableFromIPC } from "apache-arrow";
import {
  actionButton, badge, errorPanel, formatCount, formatDuration, h, onChange, onKernelLost, sendAction, setBusy,
} from "./lib/ui.js";

/** @typedef {import("./lib/ui.js").Model} Model */

const MAX_TEXT = 200;
const MAX_LIST = 6;

/**
 * Text for one cell of an Arrow row.
 * @param {any} value
 * @returns {string}
 */
export function formatCell(value) {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") {
    if (Number.isInteger(value) || !Number.isFinite(value)) return String(value);
    return String(Number(value.toPrecision(8)));
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return value.length > MAX_TEXT ? `${value.slice(0, MAX_TEXT)}…` : value;
  if (typeof value === "object" && typeof value[Symbol.iterator] === "function") {
    const items = Array.from(/** @type {Iterable<any>} */ (value));
    const shown = items.slice(0, MAX_LIST).map(formatCell).join(", ");
    return `[${shown}${items.length > MAX_LIST ? `, … (${items.length})` : ""}]`;
  }
  return String(value);
}

/**
 * Turn a message buffer (DataView, ArrayBuffer or typed array) into bytes.
 * @param {any} buf
 * @returns {Uint8Array}
 */
export function toBytes(buf) {
  if (buf instanceof Uint8Array) return buf;
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  return new Uint8Array(buf);
}

/**
 * Decode one IPC page into column names and rows of cell text.
 * @param {any} buffer
 * @returns {{columns: string[], rows: {text: string, isNull: boolean}[][]}}
 */
export function decodePage(buffer) {
  const table = tableFromIPC(toBytes(buffer));
  const columns = table.schema.fields.map((f) => f.name);
  const vectors = columns.map((_, i) => table.getChildAt(i));
  const rows = [];
  for (let r = 0; r < table.numRows; r += 1) {
    rows.push(vectors.map((v) => {
      const value = v ? v.get(r) : null;
      return { text: formatCell(value), isNull: value === null || value === undefined };
    }));
  }
  return { columns, rows };
}

/**
 * @param {{columns: string[], rows: {text: string, isNull: boolean}[][]}} page
 * @param {number} offset
 */
function resultTable(page, offset) {
  const thead = h("thead", {}, h("tr", {}, h("th", { class: "n4a-rownum" }, "#"), ...page.columns.map((c) => h("th", {}, c))));
  const tbody = h("tbody", {});
  if (page.rows.length === 0) {
    tbody.append(h("tr", {}, h("td", { colspan: String(page.columns.length + 1), class: "n4a-empty" }, "No rows")));
  }
  page.rows.forEach((row, i) => {
    tbody.append(h("tr", {}, h("td", { class: "n4a-rownum" }, String(offset + i + 1)),
      ...row.map((cell) => h("td", { class: cell.isNull ? "n4a-muted" : "", title: cell.text }, cell.text))));
  });
  return h("table", { class: "n4a-table n4a-sql-results", "data-table": "results" }, thead, tbody);
}

/**
 * "Running query · 2.4 s" with Cancel, while a query or export runs (no percent: a query has none).
 * @param {Model} model
 */
function runningPanel(model) {
  const label = h("span", { class: "n4a-sql-running-label", "data-section": "running" });
  const cancel = actionButton(model, "Cancel", "cancel");
  const el = h("div", { class: "n4a-row n4a-sql-running" }, label, cancel);
  let since = Date.now();
  let base = 0;
  const text = () => {
    const what = model.get("job_name") === "Export result" ? "Exporting" : "Running query";
    const step = String(model.get("message") || "");
    const detail = step && !/^(Starting|Running query)$/.test(step) ? ` · ${step}` : "";
    label.textContent = `${what}${detail} · ${formatDuration(base + (Date.now() - since) / 1000)}`;
  };
  const update = () => {
    const running = model.get("state") === "running";
    el.style.display = running ? "" : "none";
    base = Number(model.get("elapsed") || 0);
    since = Date.now();
    if (running) text();
  };
  update();
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let timer = setInterval(() => { if (model.get("state") === "running") text(); }, 250);
  const off = onChange(model, ["state", "message", "elapsed", "job_name"], update);
  const stop = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  const unwatch = onKernelLost(model, () => { // the query is gone with the kernel: stop counting
    stop();
    off();
    el.style.display = "none";
  });
  return { el, dispose: () => { stop(); off(); unwatch(); } };
}

/** @param {{model: Model, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "n4a-widget n4a-sql-console" });
  const header = h("div", { class: "n4a-header" },
    h("span", { class: "n4a-title" }, "SQL console"), badge("read-only", "green"),
    h("span", { class: "n4a-path" }, String(model.get("workspace_path") || "")));
  const sidebar = h("div", { class: "n4a-sql-sidebar", "data-section": "schema" });
  const editor = /** @type {HTMLTextAreaElement} */ (h("textarea", {
    class: "n4a-textarea n4a-sql-editor", spellcheck: "false", rows: "6", "aria-label": "SQL query",
    placeholder: "SELECT * FROM predictions LIMIT 10   (Ctrl/Cmd+Enter runs)",
  }));
  editor.value = String(model.get("sql") || "");
  const examples = /** @type {HTMLSelectElement} */ (h("select", { class: "n4a-select n4a-sql-examples", "aria-label": "Example queries" }));
  const runSql = () => sendAction(model, "run", { sql: editor.value });
  const runButton = actionButton(model, "Run", "run", { kind: "primary", args: () => ({ sql: editor.value }), title: "Ctrl/Cmd+Enter" });
  const status = h("div", { class: "n4a-sql-status", "data-section": "status" });
  const warnings = h("div", { class: "n4a-muted", "data-section": "warnings" });
  const results = h("div", { class: "n4a-sql-results-wrap", "data-section": "results" });
  const prev = actionButton(model, "‹ Prev", "prev_page");
  const next = actionButton(model, "Next ›", "next_page");
  const pageLabel = h("span", { class: "n4a-muted", "data-section": "page" });
  const pager = h("div", { class: "n4a-row n4a-sql-pager" }, prev, pageLabel, next);
  const exportInput = /** @type {HTMLInputElement} */ (h("input", {
    class: "n4a-input n4a-sql-export-path", type: "text", "aria-label": "Export path",
    placeholder: "export path (.parquet, outside the workspace; empty = next to it)",
  }));
  const exportButton = actionButton(model, "Export result as Parquet", "export_result", {
    args: () => ({ path: exportInput.value }),
  });
  const exportLine = h("span", { class: "n4a-muted", "data-section": "export" });
  const history = h("div", { class: "n4a-sql-history", "data-section": "history" });
  const progress = runningPanel(model);
  const errors = errorPanel(model);
  const notices = h("div", { class: "n4a-muted", "data-section": "notices" });

  root.append(header,
    h("div", { class: "n4a-sql-main" },
      sidebar,
      h("div", { class: "n4a-sql-work" },
        editor,
        h("div", { class: "n4a-row" }, runButton, examples),
        errors.el, progress.el, notices, warnings, status, results, pager,
        h("div", { class: "n4a-row" }, exportInput, exportButton, exportLine),
        h("details", { class: "n4a-section" }, h("summary", {}, "History"), history))));
  el.append(root);

  /** @param {KeyboardEvent} ev */
  const onKey = (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") {
      ev.preventDefault();
      if (model.get("state") !== "running") runSql();
    }
  };
  editor.addEventListener("keydown", onKey);

  const onExample = () => {
    const list = model.get("examples") || [];
    const chosen = list[Number(examples.value)];
    if (chosen) editor.value = chosen.sql;
    examples.value = "";
  };
  examples.addEventListener("change", onExample);

  /** @param {Event} ev */
  const onSidebarClick = (ev) => {
    const target = /** @type {HTMLElement} */ (ev.target);
    const name = target?.closest?.("[data-insert]")?.getAttribute("data-insert");
    if (!name) return;
    const start = editor.selectionStart ?? editor.value.length;
    const end = editor.selectionEnd ?? start;
    editor.value = editor.value.slice(0, start) + name + editor.value.slice(end);
    editor.focus();
  };
  sidebar.addEventListener("click", onSidebarClick);

  /** @param {Event} ev */
  const onHistoryClick = (ev) => {
    const target = /** @type {HTMLElement} */ (ev.target);
    const item = target?.closest?.("[data-history]");
    if (!item) return;
    const list = model.get("history") || [];
    const entry = list[Number(item.getAttribute("data-history"))];
    if (entry) editor.value = entry.sql;
  };
  history.addEventListener("click", onHistoryClick);

  const drawSchema = () => {
    const tables = model.get("schema") || [];
    sidebar.replaceChildren(h("div", { class: "n4a-section-title" }, "Tables"),
      ...tables.map((/** @type {any} */ t) => h("details", { class: "n4a-sql-table", "data-table-name": t.name },
        h("summary", {}, h("span", { "data-insert": t.name, class: "n4a-sql-name" }, t.name),
          t.row_count !== null && t.row_count !== undefined ? h("span", { class: "n4a-muted" }, ` ${formatCount(t.row_count)}`) : null),
        h("ul", {}, ...(t.columns || []).map((/** @type {any} */ c) => h("li", {},
          h("span", { "data-insert": c.name, class: "n4a-sql-name" }, c.name), " ",
          h("span", { class: "n4a-muted" }, c.type)))))));
  };

  const drawExamples = () => {
    const list = model.get("examples") || [];
    examples.replaceChildren(h("option", { value: "" }, "Examples…"),
      ...list.map((/** @type {any} */ e, /** @type {number} */ i) => h("option", { value: String(i) }, e.title)));
    examples.value = "";
  };

  const drawStatus = () => {
    const r = model.get("report") || {};
    const resultState = String(model.get("result_state") || "none");
    // Dim the previous result while a new query runs (inline: the shared stylesheet has no class for it).
    results.classList.toggle("n4a-sql-stale", resultState === "stale");
    results.style.opacity = resultState === "stale" ? "0.45" : "";
    if (resultState === "none" && results.childElementCount) results.replaceChildren();
    /** @type {HTMLButtonElement} */ (exportButton).disabled = resultState !== "fresh" || model.get("state") === "running";
    const n = model.get("notices") || [];
    notices.textContent = n.length ? String(n[n.length - 1]) : "";
    if (model.get("state") === "cancelled" && resultState === "none") {
      status.textContent = "Cancelled";
      pageLabel.textContent = "";
      pager.style.display = "none";
    } else if (r.row_count === undefined) {
      status.textContent = "";
      pageLabel.textContent = "";
      pager.style.display = "none";
    } else {
      const more = r.truncated
        ? (r.truncated_reason === "bytes" ? " (more rows exist; kept rows reached the size cap)" : ` (more rows exist; capped at ${formatCount(r.limit)})`)
        : "";
      status.textContent = `${formatCount(r.row_count)} rows${more} · ${formatDuration(r.duration_seconds || 0)}`;
      pageLabel.textContent = `page ${(r.page || 0) + 1} / ${r.page_count || 1}`;
      pager.style.display = (r.page_count || 1) > 1 ? "" : "none";
      /** @type {HTMLButtonElement} */ (prev).disabled = (r.page || 0) <= 0;
      /** @type {HTMLButtonElement} */ (next).disabled = (r.page || 0) >= (r.page_count || 1) - 1;
    }
    const w = model.get("warnings") || [];
    warnings.textContent = w.join(" ");
    const ex = model.get("last_export") || {};
    exportLine.textContent = ex.path ? `Wrote ${formatCount(ex.row_count)} rows to ${ex.path}` : "";
    if (!exportInput.value && model.get("export_path")) exportInput.value = String(model.get("export_path"));
  };

  const drawHistory = () => {
    const list = model.get("history") || [];
    history.replaceChildren(...list.map((/** @type {any} */ e, /** @type {number} */ i) => h("div", {
      class: `n4a-sql-history-item ${e.ok ? "" : "n4a-bad"}`, "data-history": String(i), title: "Click to load into the editor",
    }, h("code", {}, e.sql), " ", h("span", { class: "n4a-muted" },
      e.ok ? `${formatCount(e.row_count)} rows · ${formatDuration(e.duration_seconds || 0)}` : String(e.error || "error")))));
  };

  const drawSql = () => {
    const sql = String(model.get("sql") || "");
    if (document.activeElement !== editor && editor.value !== sql) editor.value = sql;
  };

  const drawBusy = () => {
    setBusy(root, model.get("state") === "running");
    drawStatus();
  };

  /**
   * @param {any} content
   * @param {any[]} [buffers]
   */
  const onMessage = (content, buffers) => {
    if (content && content.type === "clear") {
      results.replaceChildren();
      return;
    }
    if (!content || content.type !== "page" || !buffers || !buffers.length) return;
    try {
      results.replaceChildren(resultTable(decodePage(buffers[0]), Number(content.offset || 0)));
    } catch (err) {
      results.replaceChildren(h("div", { class: "n4a-error" }, `Could not show this page: ${String(err)}`));
    }
  };
  model.on("msg:custom", onMessage);

  drawSchema();
  drawExamples();
  drawHistory();
  drawBusy();
  const disposers = [
    onChange(model, ["schema"], drawSchema),
    onChange(model, ["examples"], drawExamples),
    onChange(model, ["history"], drawHistory),
    onChange(model, ["report", "warnings", "last_export", "export_path", "result_state", "notices"], drawStatus),
    onChange(model, ["state"], drawBusy),
    onChange(model, ["sql"], drawSql),
  ];
  // A second view (or a re-render) asks Python for the page on screen.
  if ((model.get("report") || {}).row_count !== undefined) sendAction(model, "request_page");

  return () => {
    for (const d of disposers) d();
    model.off("msg:custom", onMessage);
    editor.removeEventListener("keydown", onKey);
    examples.removeEventListener("change", onExample);
    sidebar.removeEventListener("click", onSidebarClick);
    history.removeEventListener("click", onHistoryClick);
    progress.dispose();
    errors.dispose();
    root.remove();
  };
}

export default { render };
