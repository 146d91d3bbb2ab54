import { afterEach, describe, expect, it } from "vitest";
import widget, { downloadHref } from "../export_picker.js";
import { itNoticesALostKernel, itShowsErrorsAndCleansUp, mount } from "./fake_model.js";

const choices = {
  datasets: [
    { name: "corn moisture", prediction_count: 34, parquet_size_bytes: 2048, pending_tombstones: 0 },
    { name: "tablets", prediction_count: 30, parquet_size_bytes: 1024, pending_tombstones: 4 },
  ],
  partitions: ["test", "train", "val"],
  models: ["PLSRegression"],
  folds: ["0", "1", "avg"],
};

const report = {
  dest: "/data/u/out.zip", format: "zip", total_rows: 64, total_bytes: 4096, duration_seconds: 0.2,
  excluded_tombstoned: 4,
  files: [
    { dataset: "corn moisture", path: "/data/u/out.zip", rows: 34, bytes: 2048, member: "corn_moisture.parquet" },
    { dataset: "tablets", path: "/data/u/out.zip", rows: 30, bytes: 2048, member: "tablets.parquet" },
  ],
};

function setup(traits = {}) {
  return mount(widget, {
    workspace_path: "/data/ws", state: "done", progress: 0, message: "", elapsed: 0, error: {}, job_name: "Refresh",
    report: {}, choices, selected: ["corn moisture", "tablets"], partition: "", model_name: "", fold_id: "",
    dest: "", default_dest: "/data/u/ws_predictions.zip", export_format: "auto", overwrite: false, download_path: "",
    ...traits,
  });
}

afterEach(() => {
  document.body.replaceChildren();
  document.head.replaceChildren();
});

describe("ExportPicker", () => {
  it("lists datasets with counts, sizes and pending deletes", () => {
    const { el } = setup();
    const boxes = el.querySelectorAll("input[data-dataset]");
    expect(boxes.length).toBe(2);
    expect(boxes[0].checked).toBe(true);
    const text = el.querySelector("[data-section=datasets]").textContent;
    expect(text).toContain("34 predictions");
    expect(text).toContain("2.0 KB");
    expect(text).toContain("4 pending deletes");
    expect(text).toContain("2/2 selected");
  });

  it("writes checkbox, All/None and filter choices to traits", () => {
    const { el, model } = setup();
    const box = el.querySelector("input[data-dataset='tablets']");
    box.checked = false;
    box.dispatchEvent(new Event("change"));
    expect(model.get("selected")).toEqual(["corn moisture"]);
    el.querySelector("[data-action=select_none]").click();
    expect(model.get("selected")).toEqual([]);
    el.querySelector("[data-action=select_all]").click();
    expect(model.get("selected")).toEqual(["corn moisture", "tablets"]);
    const partition = el.querySelector("select[data-filter=partition]");
    expect([...partition.options].map((o) => o.value)).toEqual(["", "test", "train", "val"]);
    partition.value = "val";
    partition.dispatchEvent(new Event("change"));
    expect(model.get("partition")).toBe("val");
  });

  it("sends Export with the form values and shows the placeholder", () => {
    const { el, model } = setup();
    const dest = el.querySelector("input[data-field=dest]");
    expect(dest.placeholder).toBe("/data/u/ws_predictions.zip");
    dest.value = "/tmp/x.zip";
    dest.dispatchEvent(new Event("change"));
    expect(model.get("dest")).toBe("/tmp/x.zip");
    el.querySelector("[data-action=export]").click();
    expect(model.sent.at(-1).content).toEqual({
      action: "export", args: { dest: "/tmp/x.zip", format: "auto", overwrite: false },
    });
    model.set("state", "running");
    expect(el.querySelector("[data-action=export]").disabled).toBe(true);
    expect(el.querySelector("[data-action=cancel]").disabled).toBe(false);
  });

  it("shows written files and a download link under the base URL", () => {
    const config = document.createElement("script");
    config.id = "jupyter-config-data";
    config.type = "application/json";
    config.textContent = JSON.stringify({ baseUrl: "/user/ana/", serverRoot: "/data/ana/project" });
    document.head.append(config);
    const { el, model } = setup({ job_name: "Export", report, download_path: "out dir/ws predictions.zip" });
    expect(model.get("server_root")).toBe("/data/ana/project"); // Python builds the link from it
    expect(el.querySelector("[data-result]").textContent).toContain("Exported 64 predictions");
    expect(el.querySelectorAll(".n4a-files li").length).toBe(2);
    const link = el.querySelector("[data-link=download]");
    expect(link.getAttribute("href")).toBe("/user/ana/files/out%20dir/ws%20predictions.zip");
    expect(link.classList.contains("n4a-btn")).toBe(true); // looks like a button, not bare text
    config.remove();
  });

  it("has no link when the file is outside the notebook folder", () => {
    const reason = "No download link: /data/x.zip is outside the folder this Jupyter server shares (/srv).";
    const { el } = setup({ job_name: "Export", report, download_path: "", download_reason: reason });
    expect(el.querySelector("[data-link]")).toBeNull();
    expect(el.querySelector("[data-note=no-link]").textContent).toBe(reason);
    expect(downloadHref("a/b.parquet")).toBe("/files/a/b.parquet");
  });


  itShowsErrorsAndCleansUp(setup);
  itNoticesALostKernel(setup);
});
