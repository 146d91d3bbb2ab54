import { describe, expect, it } from "vitest";
import widget from "../workspace_browser.js";
import { itShowsErrorsAndCleansUp, mount } from "./fake_model.js";

const row = (path, mode, size, extra = {}) => ({
  path: `/data/fleet/${path}`, storage_mode: mode, format: "sqlite-workspace-v2", migration_needed: mode !== "migrated",
  size_bytes: size, total_predictions: 10, datasets: ["corn", "wheat"], last_run_at: "2026-01-02T03:04:05",
  pending_tombstones: 0, error: null, is_archive: false, archive_member: null, message: "", ...extra,
});

const rows = [
  row("b_current", "migrated", 2000),
  row("a_old", "legacy", 1000, { total_predictions: 42 }),
  row("cluster/workspace.zip", "migrated", 500, { is_archive: true, archive_member: "workspace", total_predictions: null }),
];

function setup(traits = {}) {
  return mount(widget, {
    workspace_path: "/data/fleet", root: "/data/fleet", state: "done", progress: 0, message: "", elapsed: 0, error: {},
    rows, totals: { workspace_count: 3, total_bytes: 3500, legacy_count: 1, legacy_bytes: 1000, reclaimable_bytes: 0,
      archive_count: 1 },
    skipped: [{ path: "/data/fleet/locked", reason: "permission denied; skipped" }],
    health: { "/data/fleet/b_current": { healthy: true, orphans: 0, corrupt_files: 0, pending_tombstones: 0 } },
    selected: [], preview: {}, report: {}, current: {}, ...traits,
  });
}

const names = (el) => [...el.querySelectorAll("[data-table=workspaces] tbody tr")].map((tr) => tr.children[1].textContent);

describe("WorkspaceBrowser", () => {
  it("renders rows with badges, size bars, health and totals", () => {
    const { el } = setup();
    expect(names(el)).toEqual(["a_old", "b_current", "cluster/workspace.zip!workspacezip"]);
    expect([...el.querySelectorAll("[data-size-bar]")].map((b) => b.style.width)).toEqual(["50%", "100%", "25%"]);
    expect(el.querySelector("[data-row='/data/fleet/a_old'] .n4a-badge").textContent).toBe("Legacy");
    expect(el.querySelector("[data-row='/data/fleet/b_current'] [data-health]").textContent).toContain("Healthy");
    expect(el.querySelector("[data-total=legacy]").textContent).toContain("1 need a migration");
    expect(el.querySelector("[data-skipped]").textContent).toContain("locked");
  });

  it("sorts by a column and filters by text and mode (view state only)", () => {
    const { el, model } = setup();
    el.querySelector("[data-sort=size_bytes]").click();
    expect(names(el)[0]).toBe("cluster/workspace.zip!workspacezip");
    el.querySelector("[data-sort=size_bytes]").click();
    expect(names(el)[0]).toBe("b_current");
    const mode = el.querySelector("[data-filter=mode]");
    mode.value = "legacy";
    mode.dispatchEvent(new Event("change"));
    expect(names(el)).toEqual(["a_old"]);
    mode.value = "";
    mode.dispatchEvent(new Event("change"));
    const text = el.querySelector("[data-filter=text]");
    text.value = "zip";
    text.dispatchEvent(new Event("input"));
    expect(names(el)).toEqual(["cluster/workspace.zip!workspacezip"]);
    expect(model.sent).toEqual([]);
  });

  it("selection is a form input; bulk and open buttons send actions", () => {
    const { el, model } = setup();
    const box = el.querySelector("[data-select='/data/fleet/a_old']");
    box.checked = true;
    box.dispatchEvent(new Event("change"));
    expect(model.get("selected")).toEqual(["/data/fleet/a_old"]);
    el.querySelector("[data-field=in_place]").checked = true;
    el.querySelector("[data-action=preview_migrate]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "preview_migrate", args: { in_place: true, output_root: null } });
    el.querySelector("[data-field=merge_target]").value = "/data/fleet/b_current";
    el.querySelector("[data-action=preview_merge]").click();
    expect(model.sent.at(-1).content).toEqual({
      action: "preview_merge", args: { target: "/data/fleet/b_current", sources: ["/data/fleet/a_old"] },
    });
    el.querySelector("[data-row='/data/fleet/b_current'] [data-action=open_widget]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "open_widget", args: { path: "/data/fleet/b_current", kind: "health" } });
  });

  it("shows a preview with confirm/discard, the per-workspace progress and the result", () => {
    const plan = { operation: "migrate", dry_run: true, planned: 1, skipped: 0, failed: 0,
      rows: [{ path: "/data/fleet/a_old", outcome: "planned", message: "42 predictions", output_path: "/data/fleet/a_old-migrated" }] };
    const { el, model } = setup({ preview: { operation: "migrate", inputs: {}, report: plan } });
    expect(el.querySelector("[data-table=preview] tbody").textContent).toContain("a_old-migrated");
    el.querySelector("[data-action=confirm]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "confirm", args: {} });
    model.set("preview", {});
    expect(el.querySelector("[data-section=preview]").style.display).toBe("none");
    model.set("state", "running");
    model.set("current", { path: "/data/fleet/a_old", index: 0, count: 1, fraction: 0.5, message: "Converting" });
    expect(el.querySelector("[data-current]").textContent).toContain("50%");
    expect(el.querySelector("[data-action=preview_compact]").disabled).toBe(true);
    model.set("state", "done");
    model.set("report", { ...plan, dry_run: false, done: 1, rows: [{ ...plan.rows[0], outcome: "done" }] });
    expect(el.querySelector("[data-table=result] [data-outcome]").textContent).toBe("done");
  });

  itShowsErrorsAndCleansUp(setup);
});
