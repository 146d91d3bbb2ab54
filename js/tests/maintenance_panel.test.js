import { describe, expect, it } from "vitest";
import widget from "../maintenance_panel.js";
import { itNoticesALostKernel, itShowsErrorsAndCleansUp, mount } from "./fake_model.js";

const group = {
  metric: "rmse", lower_is_better: true, total: 10, missing: 0,
  bin_edges: [0, 1, 2, 3], counts: [5, 3, 2],
  cut_scores: Array.from({ length: 101 }, (_, k) => (k === 0 ? null : 3 - k / 50)),
  cut_counts: Array.from({ length: 101 }, (_, k) => Math.floor(10 * k / 100)),
};

const preview = {
  operation: "remove_bottom",
  inputs: { fraction: 0.3 },
  report: {
    dry_run: true, removed: 3, total: 10, remaining: 7, plan_id: "abc", cancelled: false,
    groups: [{ metric: "rmse", lower_is_better: true, total: 10, removed: 3, threshold_score: 2.4 }],
    datasets: [{ dataset_name: "corn moisture", total: 10, removed: 3, remaining: 7 }],
  },
};

function setup(traits = {}) {
  return mount(widget, {
    workspace_path: "/data/ws", state: "idle", progress: 0, message: "", elapsed: 0, error: {}, job_name: "",
    choices: { score_metrics: ["val_score", "test_score"], partitions: ["test", "train", "val"], datasets: ["corn moisture"] },
    fraction: 0.1, metric: "val_score", partition: "val", dataset: "",
    distribution: { groups: [group] }, preview: {}, report: {}, last_action: "", busy_reason: "",
    ...traits,
  });
}

describe("MaintenancePanel", () => {
  it("draws dropdowns from the workspace and a histogram with a cut line", () => {
    const { el } = setup();
    const options = [...el.querySelectorAll("[data-input=dataset] option")].map((o) => o.value);
    expect(options).toEqual(["", "corn moisture"]);
    expect(el.querySelectorAll("[data-histogram] rect").length).toBe(3);
    expect(el.querySelector("[data-cut-caption]").textContent).toContain("removes 1 of 10");
  });

  it("moves the cut line with the slider without asking Python, and sets fraction on release", () => {
    const { el, model } = setup();
    const line = el.querySelector("[data-cut-line]");
    const slider = el.querySelector("[data-input=fraction]");
    slider.value = "0.5";
    slider.dispatchEvent(new Event("input"));
    const x50 = Number(line.getAttribute("x1"));
    expect(el.querySelector("[data-cut-caption]").textContent).toContain("removes 5 of 10");
    expect(model.get("fraction")).toBe(0.1);
    slider.value = "0.9";
    slider.dispatchEvent(new Event("input"));
    expect(Number(line.getAttribute("x1"))).toBeLessThan(x50);
    slider.dispatchEvent(new Event("change"));
    expect(model.get("fraction")).toBe(0.9);
  });

  it("sends the partition choice to Python", () => {
    const { el, model } = setup();
    const sel = el.querySelector("[data-input=partition]");
    sel.value = "";
    sel.dispatchEvent(new Event("change"));
    expect(model.get("partition")).toBe("");
  });

  it("shows the preview with counts per dataset and a confirm button", () => {
    const { el, model } = setup();
    expect(el.querySelector("[data-summary=remove-bottom]")).toBeNull();
    model.set("preview", preview);
    const rows = el.querySelectorAll("[data-table=remove-bottom] tbody tr");
    expect(rows.length).toBe(1);
    expect(rows[0].textContent).toContain("corn moisture");
    el.querySelector("[data-action=confirm]").click();
    expect(model.sent.at(-1).content).toEqual({ action: "confirm", args: {} });
  });

  it("shows compact results per dataset", () => {
    const { el } = setup({
      last_action: "compact",
      report: {
        rows_removed: 4, bytes_reclaimed: 2048, cancelled: false,
        datasets: [{ dataset_name: "tablets", rows_removed: 4, bytes_before: 4096, bytes_after: 2048 }],
      },
    });
    expect(el.querySelector("[data-table=compact]").textContent).toContain("tablets");
    expect(el.querySelector("[data-result=compact]").textContent).toContain("2.0 KB reclaimed");
  });

  it("disables actions while busy and says why", () => {
    const { el, model } = setup();
    model.set("busy_reason", "A nirs4all run may be writing");
    expect(el.querySelector("[data-action=compact]").disabled).toBe(true);
    expect(el.querySelector("[data-banner=busy]").textContent).toContain("nirs4all run");
    model.set("busy_reason", "");
    model.set("job_name", "Compact");
    model.set("state", "running");
    expect(el.querySelector("[data-action=preview_remove_bottom]").disabled).toBe(true);
    expect(el.querySelector("[data-action=cancel]").disabled).toBe(false);
    expect(el.querySelector("[data-banner=busy]").textContent).toContain("Compact is running");
  });

  it("draws histograms with axes and values, each in its own spaced card", () => {
    const { el } = setup({ distribution: { groups: [group, { ...group, metric: "r2" }] } });
    const charts = el.querySelectorAll("[data-histogram]");
    expect(charts.length).toBe(2);
    for (const c of charts) {
      expect(c.querySelector("[data-axis=x]")).not.toBeNull();
      expect(c.querySelector("[data-axis=y]")).not.toBeNull();
      expect(c.querySelectorAll("[data-tick=x]").length).toBe(3);
      expect([...c.querySelectorAll("[data-tick=y]")].map((t) => t.textContent)).toContain("0");
      expect(c.style.margin).not.toBe("");
    }
  });

  it("moves the slider with the arrow keys and tells Python", () => {
    const { el, model } = setup();
    const slider = el.querySelector("[data-input=fraction]");
    slider.value = "0.1";
    const right = new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true, cancelable: true });
    let reachedNotebook = false;
    const spy = () => { reachedNotebook = true; };
    document.addEventListener("keydown", spy);
    slider.dispatchEvent(right);
    document.removeEventListener("keydown", spy);
    expect(Number(slider.value)).toBeCloseTo(0.11);
    expect(model.get("fraction")).toBeCloseTo(0.11);
    expect(reachedNotebook).toBe(false); // JupyterLab's cell navigation does not get it
    slider.dispatchEvent(new KeyboardEvent("keydown", { key: "Home", bubbles: true }));
    expect(model.get("fraction")).toBe(0);
  });

  it("does not paint Confirm red when nothing would be removed", () => {
    const nothing = { ...preview, report: { ...preview.report, removed: 0, remaining: 10 } };
    const { el, model } = setup({ preview: nothing });
    const confirm = el.querySelector("[data-result=remove-bottom] [data-action=confirm]");
    expect(confirm.className).not.toContain("danger");
    expect(confirm.textContent).toContain("nothing to remove");
    model.set("preview", preview);
    expect(el.querySelector("[data-result=remove-bottom] [data-action=confirm]").className).toContain("danger");
  });

  it("says Loading workspace… until the choices arrive", () => {
    const { el, model } = setup({ choices: {}, distribution: {}, state: "running" });
    expect(el.querySelector("[data-loading]").textContent).toBe("Loading workspace…");
    model.set("choices", { datasets: ["corn"], score_metrics: ["val_score"], partitions: ["val"] });
    expect(el.querySelector("[data-loading]")).toBeNull();
  });

  itShowsErrorsAndCleansUp(setup);
  itNoticesALostKernel(setup);
});
