import { tableFromArrays, tableToIPC } from "apache-arrow";
import { describe, expect, it } from "vitest";
import widget, { decodePage, formatCell } from "../sql_console.js";
import { itNoticesALostKernel, itShowsErrorsAndCleansUp, mount } from "./fake_model.js";

const schema = [
  { name: "predictions", kind: "table", row_count: 3, columns: [{ name: "prediction_id", type: "VARCHAR" }, { name: "val_score", type: "DOUBLE" }] },
  { name: "arrays", kind: "arrays", row_count: null, columns: [{ name: "y_pred", type: "DOUBLE[]" }] },
];

function ipcPage() {
  const t = tableFromArrays({ model_name: ["PLS", "Ridge"], val_score: Float64Array.from([0.25, 0.5]) });
  const bytes = tableToIPC(t, "stream");
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Deliver a custom message the way anywidget does. */
function deliver(model, content, buffers) {
  for (const cb of model.listeners.get("msg:custom") ?? []) cb(content, buffers);
}

function setup(traits = {}) {
  return mount(widget, {
    workspace_path: "/data/ws", state: "idle", progress: 0, message: "", elapsed: 0, error: {}, report: {},
    sql: "", schema, examples: [{ title: "Runs", sql: "SELECT * FROM runs" }], history: [], warnings: [],
    last_export: {}, export_path: "", ...traits,
  });
}

describe("SqlConsole", () => {
  it("renders the schema sidebar and examples", () => {
    const { el } = setup();
    const tables = el.querySelectorAll("[data-table-name]");
    expect(tables.length).toBe(2);
    expect(tables[0].textContent).toContain("val_score");
    expect(el.querySelector(".n4a-sql-examples").textContent).toContain("Runs");
  });

  it("Ctrl+Enter and Run send the editor's SQL", () => {
    const { el, model } = setup();
    const editor = el.querySelector("textarea");
    editor.value = "SELECT 1";
    editor.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", ctrlKey: true, bubbles: true }));
    expect(model.sent.at(-1).content).toEqual({ action: "run", args: { sql: "SELECT 1" } });
    editor.value = "SELECT 2";
    editor.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", metaKey: true, bubbles: true }));
    expect(model.sent.at(-1).content.args.sql).toBe("SELECT 2");
    el.querySelector("[data-action=run]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "run", args: { sql: "SELECT 2" } });
    const n = model.sent.length;
    editor.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(model.sent.length).toBe(n);
  });

  it("choosing an example fills the editor; clicking a name inserts it", () => {
    const { el } = setup();
    const select = el.querySelector(".n4a-sql-examples");
    select.value = "0";
    select.dispatchEvent(new Event("change"));
    const editor = el.querySelector("textarea");
    expect(editor.value).toBe("SELECT * FROM runs");
    editor.value = "";
    el.querySelector("[data-insert=val_score]").click();
    expect(editor.value).toBe("val_score");
  });

  it("draws an Arrow IPC page from a custom message", () => {
    const { el, model } = setup();
    model.set("report", { row_count: 120, truncated: true, limit: 100, duration_seconds: 0.25, page: 1, page_count: 3 });
    for (const cb of model.listeners.get("msg:custom")) cb({ type: "page", offset: 50 }, [ipcPage()]);
    const rows = el.querySelectorAll("[data-table=results] tbody tr");
    expect(rows.length).toBe(2);
    expect(rows[0].textContent).toContain("51");
    expect(rows[0].textContent).toContain("PLS");
    expect(rows[1].textContent).toContain("0.5");
    expect(el.querySelector("[data-section=status]").textContent).toContain("120 rows");
    expect(el.querySelector("[data-section=status]").textContent).toContain("capped at 100");
    expect(el.querySelector("[data-section=page]").textContent).toBe("page 2 / 3");
    el.querySelector("[data-action=next_page]").click();
    expect(model.sent.at(-1).content.action).toBe("next_page");
  });

  it("asks for the current page when re-rendered with a result", () => {
    const { model } = setup({ report: { row_count: 3, page: 0, page_count: 1 } });
    expect(model.sent.some((m) => m.content.action === "request_page")).toBe(true);
  });

  it("shows errors inline, history, and disables Run while running", () => {
    const { el, model } = setup();
    model.set("error", { type: "QueryRejectedError", message: "This console is read-only: DELETE statements are not allowed", hint: "" });
    expect(el.querySelector(".n4a-error").textContent).toContain("read-only");
    model.set("history", [{ sql: "DELETE FROM runs", ok: false, error: "read-only" }, { sql: "SELECT 1", ok: true, row_count: 1, duration_seconds: 0.01 }]);
    const items = el.querySelectorAll("[data-history]");
    expect(items.length).toBe(2);
    items[1].click();
    expect(el.querySelector("textarea").value).toBe("SELECT 1");
    model.set("state", "running");
    expect(el.querySelector("[data-action=run]").disabled).toBe(true);
    expect(el.querySelector("[data-action=cancel]").disabled).toBe(false);
  });

  it("sends the export path", () => {
    const { el, model } = setup({ result_state: "fresh" });
    el.querySelector(".n4a-sql-export-path").value = "/tmp/out.parquet";
    el.querySelector("[data-action=export_result]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "export_result", args: { path: "/tmp/out.parquet" } });
  });

  it("formats cells and decodes pages", () => {
    expect(formatCell(null)).toBe("NULL");
    expect(formatCell(12n)).toBe("12");
    expect(formatCell([1, 2, 3, 4, 5, 6, 7])).toBe("[1, 2, 3, 4, 5, 6, … (7)]");
    expect(formatCell(0.1234567891234)).toBe("0.12345679");
    const page = decodePage(ipcPage());
    expect(page.columns).toEqual(["model_name", "val_score"]);
    expect(page.rows[1][1].text).toBe("0.5");
  });

  it("dims a stale result, clears it after a failure or cancel, and disables Export", () => {
    const { el, model } = setup({ result_state: "fresh", report: { row_count: 2, page: 0, page_count: 1, duration_seconds: 0.1 } });
    const results = el.querySelector("[data-section=results]");
    deliver(model, { type: "page", offset: 0 }, [ipcPage()]);
    expect(results.querySelectorAll("tbody tr").length).toBe(2);
    const exportButton = el.querySelector("[data-action=export_result]");
    expect(exportButton.disabled).toBe(false);
    model.set("result_state", "stale");
    expect(results.style.opacity).toBe("0.45");
    expect(exportButton.disabled).toBe(true);
    deliver(model, { type: "clear" }, []);
    model.set("report", {});
    model.set("result_state", "none");
    model.set("state", "cancelled");
    expect(results.childElementCount).toBe(0);
    expect(exportButton.disabled).toBe(true);
    expect(el.querySelector("[data-section=status]").textContent).toBe("Cancelled");
    expect(el.querySelector(".n4a-error").textContent).toBe("");
  });

  it("shows a running label and plain error titles, never a class name", () => {
    const { el, model } = setup();
    model.set("message", "Starting");
    model.set("state", "running");
    expect(el.querySelector("[data-section=running]").textContent).toMatch(/^Running query · /);
    expect(el.querySelector("[data-section=running]").textContent).not.toContain("%");
    model.set("state", "error");
    for (const type of ["QueryTimeoutError", "QueryRejectedError", "OperationCancelledError", "ValueError", "Whatever"]) {
      model.set("error", { type, title: "Time limit reached", message: "m", hint: "" });
      expect(el.querySelector(".n4a-error").textContent).not.toContain(type);
    }
  });

  itShowsErrorsAndCleansUp(setup);
  itNoticesALostKernel(setup);
});
