import { describe, expect, it } from "vitest";
import widget from "../merge_stores.js";
import { itNoticesALostKernel, itShowsErrorsAndCleansUp, mount } from "./fake_model.js";

const strategies = {
  keep_best: "Keep the better validation score.",
  keep_existing: "Keep the target's prediction.",
  overwrite: "Replace the target's prediction.",
};

const preview = {
  dry_run: true, plan_id: "abc123", added: 12, removed: 3, conflicts: 5, predictions_before: 10, predictions_after: 19,
  bytes: 4096,
  sources: [{
    name: "team_b", predictions: 20, added: 12, removed: 3, conflicts: 5, kept_existing: 2, skipped: 0,
    datasets: ["wheat"],
    conflict_details: [{ key: { dataset_name: "wheat", model_name: "PLS", fold_id: "0", partition: "val" },
      source_id: "s1", target_id: "t1", winner: "source", source_score: 0.1, target_score: 0.2 }],
  }],
  chains_added: 2, chains_removed: 1, artifacts_added: 1, artifacts_removed: 1, artifact_bytes_added: 2048,
  artifact_bytes_removed: 1024,
  chain_changes: [
    { change: "added", dataset: "wheat", model_class: "sklearn.PLSRegression", preprocessings: "MinMax", predictions: 9,
      chain_id: "c1", source: "team_b" },
    { change: "added", dataset: "corn", model_class: "sklearn.PLSRegression", preprocessings: "", predictions: 3,
      chain_id: "c2", source: "team_b" },
    { change: "removed", dataset: "wheat", model_class: "sklearn.PLSRegression", preprocessings: "MinMax",
      predictions: 3, chain_id: "t9", source: "" },
  ],
  artifact_changes: [
    { change: "added", artifact_id: "a1", operator_class: "sklearn.Pipeline", artifact_type: "model", size_bytes: 2048,
      source: "team_b" },
    { change: "removed", artifact_id: "a0", operator_class: "sklearn.Pipeline", artifact_type: "model",
      size_bytes: 1024, source: "" },
  ],
};

/** @param {number} n */
function manyConflicts(n) {
  return Array.from({ length: n }, (_, i) => ({
    key: { dataset_name: "wheat", model_name: "PLS", fold_id: String(i % 3), partition: "val", metric: "rmse",
      refit_context: i % 2 ? "standalone" : null },
    source_id: `s${i}`, target_id: `t${i}`, winner: "target", source_score: 0.3, target_score: 0.2,
  }));
}

function setup(traits = {}) {
  return mount(widget, {
    workspace_path: "/data/target", state: "idle", progress: 0, message: "", elapsed: 0, error: {}, report: {},
    sources: ["/data/team_a"], siblings: [{ path: "/data/team_b", name: "team_b", predictions: 40 }],
    strategy: "keep_best", strategies, datasets: [], available_datasets: ["corn", "wheat"], plan_id: "",
    preview_report: {}, ...traits,
  });
}

describe("MergeStores", () => {
  it("paints Confirm red only when target predictions are replaced", () => {
    const confirm = (/** @type {any} */ report) => setup({ plan_id: report.plan_id, preview_report: report })
      .el.querySelector('[data-action="confirm"]');
    expect(confirm(preview).className).toContain("n4a-btn-danger");
    expect(confirm({ ...preview, removed: 0 }).className).toContain("n4a-btn-primary");
    const nothing = confirm({ ...preview, added: 0, removed: 0 });
    expect(nothing.className).toContain("n4a-btn-plain");
    expect(nothing.textContent).toContain("nothing to add");
  });

  it("renders sources, siblings, strategies with explanations and datasets", () => {
    const { el } = setup();
    expect(el.querySelector("[data-source]").textContent).toContain("/data/team_a");
    expect(el.querySelector("[data-sibling]").textContent).toContain("team_b");
    expect(el.querySelector("[data-sibling]").textContent).toContain("40 predictions");
    expect(el.querySelectorAll("[data-strategy]").length).toBe(3);
    expect(el.querySelector("[data-strategy=keep_best]").checked).toBe(true);
    expect(el.querySelector("[data-list=strategies]").textContent).toContain("Keep the target's prediction.");
    expect(el.querySelectorAll("[data-dataset]").length).toBe(2);
  });

  it("sends add/remove/strategy/dataset actions", () => {
    const { el, model } = setup();
    const input = el.querySelector("[data-input=source]");
    input.value = "/data/other";
    el.querySelector("button[data-action=add_source]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "add_source", args: { path: "/data/other" } });
    expect(input.value).toBe("");
    el.querySelector("[data-action=add_sibling]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "add_source", args: { path: "/data/team_b" } });
    el.querySelector("[data-action=remove_source]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "remove_source", args: { path: "/data/team_a" } });
    const overwrite = el.querySelector("[data-strategy=overwrite]");
    overwrite.checked = true;
    overwrite.dispatchEvent(new Event("change"));
    expect(model.sent.at(-1).content).toEqual({ action: "set_strategy", args: { strategy: "overwrite" } });
    const wheat = el.querySelector("[data-dataset=wheat]");
    wheat.checked = true;
    wheat.dispatchEvent(new Event("change"));
    expect(model.sent.at(-1).content).toEqual({ action: "set_datasets", args: { datasets: ["wheat"] } });
  });

  it("confirm is enabled only with a previewed plan, and shows the plan", () => {
    const { el, model } = setup();
    const confirm = el.querySelector("button[data-action=confirm]");
    expect(confirm.disabled).toBe(true);
    el.querySelector("button[data-action=preview]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "preview", args: {} });
    model.set("preview_report", preview);
    model.set("plan_id", "abc123");
    expect(confirm.disabled).toBe(false);
    expect(el.querySelector("[data-summary=preview]").textContent).toContain("Will add 12");
    expect(el.querySelector("[data-table=sources] tbody tr").textContent).toContain("team_b");
    expect(el.querySelector("[data-table=conflicts] tbody tr").textContent).toContain("source replaces the target's");
    confirm.click();
    expect(model.sent.at(-1).content).toEqual({ action: "confirm", args: {} });
    model.set("state", "running");
    expect(confirm.disabled).toBe(true);
    expect(el.querySelector("button[data-action=cancel]").disabled).toBe(false);
  });

  it("caps the conflict table with a count, scrollable, showing the key parts that differ", () => {
    const sources = [{ ...preview.sources[0], conflicts: 98, conflict_details: manyConflicts(98) }];
    const { el } = setup({ preview_report: { ...preview, conflicts: 98, sources }, plan_id: "abc123" });
    expect(el.querySelectorAll("[data-table=conflicts] tbody tr").length).toBe(50);
    expect(el.querySelector("[data-count=conflicts]").textContent).toBe("Showing 50 of 98 conflicts");
    expect(el.querySelector("[data-list=conflicts] .n4a-scroll").getAttribute("style")).toContain("overflow: auto");
    const head = el.querySelector("[data-table=conflicts] thead").textContent;
    expect(head).toContain("fold");
    expect(head).toContain("refit");
    expect(head).not.toContain("metric"); // the same on every row: it tells nothing apart
  });

  it("lists the chains and model files to add and remove", () => {
    const { el } = setup({ preview_report: preview, plan_id: "abc123" });
    expect(el.querySelectorAll("[data-table=chains] tbody tr").length).toBe(3);
    expect(el.querySelector("[data-table=chains]").textContent).toContain("to remove");
    expect(el.querySelectorAll("[data-table=artifacts] tbody tr").length).toBe(2);
    expect(el.querySelector("[data-summary=lineage]").textContent).toContain("2 chain(s) and 1 model file(s)");
  });

  it("shows the executed report", () => {
    const { el } = setup({ report: { ...preview, dry_run: false } });
    expect(el.querySelector("[data-summary=done]").textContent).toContain("Added 12");
  });


  itShowsErrorsAndCleansUp(setup);
  itNoticesALostKernel(setup);
});
