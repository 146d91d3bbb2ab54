import { describe, expect, it } from "vitest";
import widget from "../storage_health.js";
import { itNoticesALostKernel, itShowsErrorsAndCleansUp, mount } from "./fake_model.js";

const report = {
  total_predictions: 5, total_datasets: 2, pending_tombstones: 1, orphan_metadata_count: 0, orphan_array_count: 0,
  corrupt_files: [], deep: false, checked_at: "2026-01-01T00:00:00+00:00",
  datasets: [
    { name: "wheat protein", prediction_count: 3, parquet_size_bytes: 2048, pending_tombstones: 1 },
    { name: "corn", prediction_count: 2, parquet_size_bytes: 1024, pending_tombstones: 0 },
  ],
};

function setup(traits = {}) {
  return mount(widget, {
    workspace_path: "/data/ws", state: "done", progress: 0, message: "", elapsed: 0, error: {},
    status: { storage_mode: "migrated", migration_needed: false, message: "" },
    stats: { space_usage: [{ name: "Metadata store", size_bytes: 100 }, { name: "Prediction arrays", size_bytes: 300 }] },
    report, ...traits,
  });
}

describe("StorageHealth", () => {
  it("renders badge, datasets and integrity", () => {
    const { el } = setup();
    expect(el.querySelector(".n4a-badge").textContent).toBe("Migrated");
    const rows = el.querySelectorAll("[data-table=datasets] tbody tr");
    expect(rows.length).toBe(2);
    expect(rows[0].textContent).toContain("wheat protein");
    // per-dataset size bars, relative to the largest file
    const bars = [...el.querySelectorAll("[data-size-bar]")].map((b) => b.style.width);
    expect(bars).toEqual(["100%", "50%"]);
    expect(el.querySelector("[data-integrity]").textContent).toContain("Healthy");
    expect(el.querySelector("[data-banner]").style.display).toBe("none");
  });

  it("shows the migration banner and amber badge for legacy stores", () => {
    const { el } = setup({ status: { storage_mode: "legacy", migration_needed: true, message: "Old DuckDB." } });
    expect(el.querySelector(".n4a-badge").className).toContain("amber");
    expect(el.querySelector("[data-banner]").textContent).toContain("MigrationWizard");
  });

  it("names corrupt files and orphans", () => {
    const { el } = setup({ report: { ...report, corrupt_files: ["/data/ws/arrays/corn.parquet"], orphan_array_count: 2 } });
    const line = el.querySelector("[data-integrity]").textContent;
    expect(line).toContain("corn.parquet");
    expect(line).toContain("2 orphans");
  });

  it("sends button actions and disables buttons while running", () => {
    const { el, model } = setup();
    el.querySelector("[data-action=integrity_check]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "integrity_check", args: {} });
    model.set("state", "running");
    expect(el.querySelector("[data-action=refresh]").disabled).toBe(true);
    expect(el.querySelector("[data-action=cancel]").disabled).toBe(false);
  });

  it("paints 'Loading workspace…' at once, never an empty workspace before it is known", () => {
    const { el, model } = setup({ report: {}, stats: {}, status: {}, state: "running" });
    expect(el.textContent).toContain("Loading workspace…");
    expect(el.textContent).not.toContain("0 datasets");
    expect(el.textContent).not.toContain("No datasets yet");
    model.set("report", report);
    expect(el.querySelector("[data-loading]")).toBeNull();
  });

  it("shows the check time in local time, not raw ISO UTC", () => {
    const { el } = setup();
    const stamp = el.querySelector("[data-checked-at]");
    expect(stamp.textContent).not.toContain("T00:00:00");
    expect(stamp.textContent).toContain(new Date(report.checked_at).toLocaleString(undefined, { year: "numeric" }));
  });

  it("explains Other and says when arrays sit inside the legacy DuckDB file", () => {
    const notes = {
      Other: { text: "Files outside the store: nirs4all's own result bundle per run.",
        entries: [{ name: "native_results/", size_bytes: 2048 }] },
      "Prediction arrays": { text: "Inside store.duckdb (legacy format).", entries: [], inline: true },
    };
    const { el } = setup({ usage_notes: notes, stats: { space_usage: [
      { name: "Metadata store", size_bytes: 100 }, { name: "Prediction arrays", size_bytes: 0 },
      { name: "Other", size_bytes: 4096 }] } });
    expect(el.querySelector("[data-usage-note=Other]").textContent).toContain("native_results/ 2.0 KB");
    const arrays = el.querySelector("[data-legend='Prediction arrays']").textContent;
    expect(arrays).toContain("inside store.duckdb");
    expect(arrays).not.toContain("0 B");
  });

  itShowsErrorsAndCleansUp(setup);
  itNoticesALostKernel(setup);
});

describe("progress panel", () => {
  it("shows percent, step and elapsed while running and stops its timer on cleanup", async () => {
    const { vi } = await import("vitest");
    vi.useFakeTimers();
    try {
      const { el, model, cleanup } = setup({ state: "running", progress: 0.42, message: "Checking corn.parquet", elapsed: 3 });
      const label = el.querySelector(".n4a-progress-label").textContent;
      expect(label).toContain("42%");
      expect(label).toContain("Checking corn.parquet");
      expect(label).toContain("3.0 s");
      vi.advanceTimersByTime(2000);
      expect(el.querySelector(".n4a-progress-label").textContent).toContain("5.0 s");
      model.set("state", "done");
      expect(el.querySelector(".n4a-progress").style.display).toBe("none");
      cleanup();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
