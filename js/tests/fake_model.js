import { expect, it } from "vitest";
// A stand-in for the anywidget model in unit tests: traits in a Map, events,
// and a log of messages sent to Python.  (The real model needs a kernel.)
export class FakeModel {
  constructor(traits = {}) {
    this.traits = new Map(Object.entries(traits));
    this.listeners = new Map();
    this.sent = [];
  }
  get(name) { return this.traits.get(name); }
  set(name, value) {
    this.traits.set(name, value);
    for (const cb of this.listeners.get(`change:${name}`) ?? []) cb();
  }
  save_changes() {}
  send(content, _callbacks, buffers) { this.sent.push({ content, buffers }); }
  on(event, cb) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(cb);
  }
  off(event, cb) {
    if (!event) { this.listeners.clear(); return; }
    if (!cb) { this.listeners.delete(event); return; }
    this.listeners.get(event)?.delete(cb);
  }
  listenerCount() {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}

/**
 * Render `widget` into a fresh element with a FakeModel holding `traits`.
 * @returns {{model: FakeModel, el: HTMLElement, cleanup: () => void}}
 */
export function mount(widget, traits) {
  const model = new FakeModel(traits);
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = widget.render({ model, el });
  return { model, el, cleanup };
}

/**
 * The checks every widget front-end must pass: errors go to the error area,
 * and the cleanup returned by render removes its DOM and every listener.
 * @param {() => {model: FakeModel, el: HTMLElement, cleanup: () => void}} setup
 */
export function itShowsErrorsAndCleansUp(setup) {
  it("shows errors in the error area", () => {
    const { el, model } = setup();
    model.set("error", { type: "WorkspaceBusyError", title: "The workspace is busy", message: "busy elsewhere",
      hint: "wait" });
    const text = el.querySelector(".n4a-error").textContent;
    expect(text).toContain("The workspace is busy");
    expect(text).toContain("busy elsewhere");
    expect(text).toContain("wait");
    expect(text).not.toContain("WorkspaceBusyError"); // class names are for code, not for people
  });

  it("cleanup removes its DOM and every listener", () => {
    const { el, model, cleanup } = setup();
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup();
    expect(model.listenerCount()).toBe(0);
    expect(el.children.length).toBe(0);
  });
}

/**
 * Every widget: when the kernel restarts (the widget manager fires
 * `comm_live_update`), say so, stop the timers and disable every control.
 * @param {() => {model: FakeModel, el: HTMLElement, cleanup: () => void}} setup
 */
export function itNoticesALostKernel(setup) {
  it("says the kernel restarted, stops its timers and freezes its controls", async () => {
    const { vi } = await import("vitest");
    vi.useFakeTimers();
    try {
      const { el, model, cleanup } = setup();
      model.set("state", "running");
      model.set("message", "Converting…");
      const label = el.querySelector(".n4a-progress-label");
      for (const cb of [...(model.listeners.get("comm_live_update") ?? [])]) cb();
      const text = el.querySelector(".n4a-error").textContent;
      expect(text).toContain("The kernel restarted; this job's state is lost — run the cell again");
      const frozen = label ? label.textContent : "";
      vi.advanceTimersByTime(5000);
      expect(label ? label.textContent : "").toBe(frozen); // no clock ticking for a dead job
      expect(vi.getTimerCount()).toBe(0);
      const controls = [...el.querySelectorAll("button, input, select, textarea")];
      expect(controls.length).toBeGreaterThan(0);
      expect(controls.every((c) => c.disabled)).toBe(true);
      model.set("state", "done"); // a late redraw does not re-enable anything
      await Promise.resolve();
      expect([...el.querySelectorAll("button")].every((c) => c.disabled)).toBe(true);
      cleanup();
      expect(model.listenerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
}
