import { describe, expect, it } from "vitest";
import widget from "../migration_wizard.js";
import { itNoticesALostKernel, itShowsErrorsAndCleansUp, mount } from "./fake_model.js";

const legacy = { storage_mode: "legacy", format: "duckdb-workspace", layout: "duckdb-inline-arrays", migration_needed: true,
  message: "Legacy DuckDB store." };
const plan = {
  dry_run: true, state: "planned", source_format: "duckdb-inline-arrays", total_rows: 42, rows_migrated: 42,
  datasets_migrated: 2, duckdb_size_before: 8_000_000, legacy_array_bytes: 30_000, estimated_duration_seconds: 3,
  output_path: "/data/ws", backup_path: "/data/ws.legacy-20260101T000000Z", warnings: [], errors: [],
  datasets: [{ name: "corn", predictions: 20 }, { name: "wheat", predictions: 22 }],
};
const done = {
  dry_run: false, state: "published", total_rows: 42, rows_migrated: 42, datasets_migrated: 2, size_before_bytes: 8e6,
  size_after_bytes: 5e5, duration_seconds: 2.5, verification_passed: true, verification_sample_size: 42,
  array_values_verified: 4830, artifacts_verified: 10, output_path: "/data/ws", backup_path: "/data/ws.legacy-x",
};

function setup(traits = {}) {
  return mount(widget, {
    workspace_path: "/data/ws", state: "idle", progress: 0, message: "", elapsed: 0, error: {}, output: "",
    status: legacy, stats: { size_bytes: 8e6 }, plan: {}, report: {}, ...traits,
  });
}

describe("MigrationWizard", () => {
  it("shows the legacy banner, current stats and the main buttons", () => {
    const { el } = setup();
    expect(el.querySelector("[data-banner]").style.display).toBe("");
    expect(el.querySelector("[data-banner]").textContent).toContain("Legacy storage: ");
    expect(el.querySelector(".n4a-badge").textContent).toBe("Legacy");
    expect(el.querySelector("[data-facts=current]").textContent).toContain("duckdb-inline-arrays");
    expect(el.querySelector("[data-buttons=main]").style.display).toBe("");
    expect(el.querySelector("[data-buttons=mid]").style.display).toBe("none");
  });

  it("renders the dry-run plan and the backup note", () => {
    const { el } = setup({ plan });
    expect(el.querySelectorAll("[data-table=plan-datasets] tbody tr").length).toBe(2);
    expect(el.querySelector("[data-facts=plan]").textContent).toContain("42");
    expect(el.querySelector("[data-note=backup]").textContent).toContain("/data/ws.legacy-20260101T000000Z");
  });

  it("names the output folder in the note when one is chosen and sends it to Python", () => {
    const { el, model } = setup();
    const input = el.querySelector("[data-input=output]");
    input.value = "/data/new_ws";
    input.dispatchEvent(new Event("change"));
    expect(model.sent.at(-1).content).toEqual({ action: "set_output", args: { output: "/data/new_ws" } });
    model.set("output", "/data/new_ws");
    expect(el.querySelector("[data-note=backup]").textContent).toContain("untouched");
  });

  it("sends dry_run and start, disables buttons while running and shows an ETA", () => {
    const { el, model } = setup();
    el.querySelector("[data-buttons=main] [data-action=dry_run]").click();
    expect(model.sent.at(-1).content.action).toBe("dry_run");
    expect(el.querySelector("[data-action=start]").disabled).toBe(true); // no preview yet: no Start
    model.set("plan", plan);
    const start = el.querySelector("[data-action=start]");
    expect(start.disabled).toBe(false);
    expect(start.textContent).toContain("ws.legacy-20260101T000000Z"); // the confirm names the backup
    start.click();
    expect(model.sent.at(-1).content.action).toBe("start");
    model.set("state", "running");
    model.set("elapsed", 10);
    model.set("progress", 0.5);
    expect(el.querySelector("[data-action=start]").disabled).toBe(true);
    expect(el.querySelector("[data-eta]").textContent).toContain("left");
  });

  it("shows the completion report", () => {
    const { el } = setup({ report: done, status: { storage_mode: "migrated", migration_needed: false } });
    const result = el.querySelector("[data-section=result]").textContent;
    expect(result).toContain("Migration complete");
    expect(result).toContain("/data/ws.legacy-x");
    expect(el.querySelector("[data-verification]").dataset.verification).toBe("passed");
    expect(el.querySelector("[data-banner]").style.display).toBe("none");
  });

  it("when done with an output folder: no Legacy banner, no Start, the form hidden, Open StorageHealth offered", () => {
    const report = { ...done, output_path: "/data/new_ws", backup_path: null };
    const { el, model } = setup({ report, plan: {}, output: "/data/new_ws", health: {} }); // the source stays legacy
    expect(el.querySelector("[data-banner]").style.display).toBe("none");
    expect(el.querySelector("[data-buttons=main]").style.display).toBe("none");
    expect(el.querySelector("[data-row=output]").style.display).toBe("none");
    const open = el.querySelector("[data-buttons=done] [data-action=open_storage_health]");
    expect(el.querySelector("[data-buttons=done]").style.display).toBe("");
    open.click();
    expect(model.sent.at(-1).content.action).toBe("open_storage_health");
    model.set("health", {
      workspace_path: "/data/new_ws", state: "done", error: {}, status: { storage_mode: "migrated" },
      stats: { space_usage: [] }, report: { total_predictions: 42, total_datasets: 3, datasets: [] },
    });
    const health = el.querySelector("[data-section=health] .n4a-storage-health");
    expect(health.textContent).toContain("/data/new_ws");
    health.querySelector("[data-action=integrity_check]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "health_action",
      args: { content: { action: "integrity_check", args: {} } } });
  });

  it("does not repeat itself in the banner", () => {
    const message = "A migration of this workspace was interrupted (phase source_renamed).";
    const { el } = setup({ status: { storage_mode: "mid_migration", migration_needed: true, message } });
    const text = el.querySelector("[data-banner]").textContent;
    expect(text.match(/interrupted/gi).length).toBe(1);
  });

  it("on failure shows the error and that the original is untouched", () => {
    const { el, model } = setup();
    expect(el.querySelector("[data-note=untouched]").style.display).toBe("none");
    model.set("error", { type: "MigrationError", message: "disk full", hint: "free space" });
    model.set("state", "error");
    expect(el.querySelector(".n4a-error").textContent).toContain("disk full");
    expect(el.querySelector("[data-note=untouched]").style.display).toBe("");
  });

  it("offers Resume and Roll back for a mid-migration store", () => {
    const { el, model } = setup({ status: { storage_mode: "mid_migration", migration_needed: true, message: "Interrupted." } });
    expect(el.querySelector("[data-buttons=mid]").style.display).toBe("");
    expect(el.querySelector("[data-buttons=main]").style.display).toBe("none");
    el.querySelector("[data-action=resume]").click();
    expect(model.sent.at(-1).content.action).toBe("resume");
    el.querySelector("[data-action=rollback]").click();
    expect(model.sent.at(-1).content.action).toBe("rollback");
  });

  itShowsErrorsAndCleansUp(setup);
  itNoticesALostKernel(setup);
});
