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
};

function setup(traits = {}) {
  return mount(widget, {
    workspace_path: "/data/target", state: "idle", progress: 0, message: "", elapsed: 0, error: {}, report: {},
    sources: ["/data/team_a"], siblings: [{ path: "/data/team_b", name: "team_b", predictions: 40 }],
    strategy: "keep_best", strategies, datasets: [], available_datasets: ["corn", "wheat"], plan_id: "",
    preview_report: {}, ...traits,
  });
}

describe("MergeStores", () => {
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
    expect(el.querySelector("[data-table=conflicts] tbody tr").textContent).toContain("source replaces target");
    confirm.click();
    expect(model.sent.at(-1).content).toEqual({ action: "confirm", args: {} });
    model.set("state", "running");
    expect(confirm.disabled).toBe(true);
    expect(el.querySelector("button[data-action=cancel]").disabled).toBe(false);
  });

  it("shows the executed report", () => {
    const { el } = setup({ report: { ...preview, dry_run: false } });
    expect(el.querySelector("[data-summary=done]").textContent).toContain("Added 12");
  });


  itShowsErrorsAndCleansUp(setup);
  itNoticesALostKernel(setup);
});
