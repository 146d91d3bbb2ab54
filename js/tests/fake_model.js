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
