// @ts-check
/**
 * Small DOM helpers shared by every widget front-end.  No business rules
 * live here: Python decides what is allowed; these only draw and forward
 * clicks as `{action, args}` messages.
 */

/**
 * @typedef {{
 *   get: (name: string) => any,
 *   set: (name: string, value: any) => void,
 *   save_changes: () => void,
 *   send: (content: any, callbacks?: any, buffers?: any[]) => void,
 *   on: (event: string, cb: (...args: any[]) => void) => void,
 *   off: (event?: string | null, cb?: ((...args: any[]) => void) | null) => void,
 * }} Model
 */

/**
 * Create an element.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = String(value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

/** @param {number} n */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** @param {number} seconds */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - 60 * m)} s`;
}

/**
 * An ISO timestamp (UTC from Python) in the reader's local time.
 * @param {string | undefined | null} iso
 */
export function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

/** @param {number} n */
export function formatCount(n) {
  return Number.isFinite(n) ? n.toLocaleString("en-US") : "–";
}

/**
 * Subscribe to model events; returns a function that unsubscribes them all.
 * @param {Model} model
 * @param {string[]} names trait names (without "change:")
 * @param {() => void} fn
 */
export function onChange(model, names, fn) {
  const events = names.map((n) => `change:${n}`);
  for (const e of events) model.on(e, fn);
  return () => {
    for (const e of events) model.off(e, fn);
  };
}

/**
 * Send a button action to Python.
 * @param {Model} model
 * @param {string} action
 * @param {Record<string, any>} [args]
 */
export function sendAction(model, action, args = {}) {
  model.send({ action, args });
}

/**
 * A button that sends `action` when clicked.
 * @param {Model} model
 * @param {string} label
 * @param {string} action
 * @param {{kind?: "primary" | "danger" | "plain", args?: () => Record<string, any>, title?: string}} [opts]
 */
export function actionButton(model, label, action, opts = {}) {
  const kind = opts.kind ?? "plain";
  return /** @type {HTMLButtonElement} */ (
    h("button", {
      class: `n4a-btn n4a-btn-${kind}`,
      type: "button",
      "data-action": action,
      title: opts.title,
      onclick: () => sendAction(model, action, opts.args ? opts.args() : {}),
    }, label)
  );
}

export const KERNEL_LOST_MESSAGE = "The kernel restarted; this job's state is lost — run the cell again.";

/**
 * Call `onLost` once when the page loses this widget's kernel (a restart or a
 * shutdown).  The widget manager marks every model "not live" then and fires
 * `comm_live_update`; nothing the widget shows is true any more and nothing it
 * sends can arrive.  Returns an unsubscribe function.
 * @param {Model} model
 * @param {() => void} onLost
 */
export function onKernelLost(model, onLost) {
  let fired = false;
  const handler = () => {
    if (fired) return;
    fired = true;
    onLost();
  };
  model.on("comm_live_update", handler);
  return () => model.off("comm_live_update", handler);
}

/**
 * Freeze a widget whose kernel is gone: every control disabled for good, also
 * those a later redraw creates.  Returns a function that stops watching.
 * @param {HTMLElement | null} root
 */
function freeze(root) {
  if (!root) return () => {};
  root.dataset.kernelLost = "true";
  const disableAll = () => {
    for (const c of root.querySelectorAll("button, input, select, textarea")) {
      const control = /** @type {HTMLButtonElement} */ (c);
      if (!control.disabled) control.disabled = true;
    }
  };
  disableAll();
  const observer = new MutationObserver(disableAll);
  observer.observe(root, { childList: true, subtree: true });
  return () => observer.disconnect();
}

/**
 * Progress bar with percent, step text, elapsed time and Cancel.
 * @param {Model} model
 */
export function progressPanel(model) {
  const fill = h("div", { class: "n4a-progress-fill" });
  const label = h("div", { class: "n4a-progress-label" });
  const cancel = actionButton(model, "Cancel", "cancel");
  const el = h("div", { class: "n4a-progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" },
    h("div", { class: "n4a-progress-track" }, fill), label, cancel);
  // Python sends elapsed time with each (throttled) progress report; between
  // reports the label keeps counting locally so a slow step does not look frozen.
  let lastElapsed = 0;
  let lastSeen = Date.now();
  const labelText = () => {
    const p = Math.round((model.get("progress") || 0) * 100);
    const elapsed = lastElapsed + (Date.now() - lastSeen) / 1000;
    label.textContent = `${p}% · ${model.get("message") || ""} · ${formatDuration(elapsed)}`;
  };
  const update = () => {
    const state = model.get("state");
    const p = Math.round((model.get("progress") || 0) * 100);
    el.style.display = state === "running" ? "" : "none";
    fill.style.width = `${p}%`;
    el.setAttribute("aria-valuenow", String(p));
    lastElapsed = model.get("elapsed") || 0;
    lastSeen = Date.now();
    labelText();
  };
  update();
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let timer = setInterval(() => {
    if (model.get("state") === "running") labelText();
  }, 500);
  const unsubscribe = onChange(model, ["state", "progress", "message", "elapsed"], update);
  const stopTimer = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  const unwatch = onKernelLost(model, () => {
    stopTimer(); // the job is gone with the kernel: stop counting
    unsubscribe();
    el.style.display = "none";
  });
  const dispose = () => {
    stopTimer();
    unsubscribe();
    unwatch();
  };
  return { el, dispose };
}

/**
 * The error area: title, message and hint; hidden when there is no error.
 * Python words all three for people (widgets/messages.py); the exception's
 * class name (`type`) is for code and is never shown.
 * @param {Model} model
 */
export function errorPanel(model) {
  const el = h("div", { class: "n4a-error", role: "alert" });
  const update = () => {
    const err = model.get("error") || {};
    el.replaceChildren();
    if (!err.message) {
      el.style.display = "none";
      return;
    }
    el.style.display = "";
    el.append(
      h("strong", { class: "n4a-error-type", "data-error-type": String(err.type || "") },
        String(err.title || "Something went wrong")),
      h("span", { class: "n4a-error-message" }, ` ${err.message}`),
    );
    if (err.hint) el.append(h("div", { class: "n4a-error-hint" }, String(err.hint)));
  };
  update();
  const unsubscribe = onChange(model, ["error"], update);
  let unfreeze = () => {};
  const unwatch = onKernelLost(model, () => {
    unsubscribe();
    el.replaceChildren(
      h("strong", { class: "n4a-error-type", "data-error-type": "KernelLost" }, "Kernel restarted"),
      h("span", { class: "n4a-error-message", "data-kernel-lost": "" }, ` ${KERNEL_LOST_MESSAGE}`),
    );
    el.style.display = "";
    unfreeze = freeze(/** @type {HTMLElement | null} */ (el.closest(".n4a-widget")));
  });
  const dispose = () => {
    unsubscribe();
    unwatch();
    unfreeze();
  };
  return { el, dispose };
}

/** @type {Record<string, [string, "green" | "amber" | "red" | "blue"]>} */
const STORAGE_MODES = {
  migrated: ["Migrated", "green"],
  legacy: ["Legacy", "amber"],
  mid_migration: ["Mid-migration", "red"],
  new: ["New", "blue"],
};

/**
 * The badge for a `status().storage_mode` (Migrated green, Legacy amber, ...).
 * @param {string | undefined} mode
 */
export function storageModeBadge(mode) {
  if (!mode) return badge("…", "grey");
  const [label, color] = STORAGE_MODES[mode] || ["Unknown", "grey"];
  return badge(label, color);
}

/**
 * @param {string} text
 * @param {"green" | "amber" | "red" | "blue" | "grey"} color
 */
export function badge(text, color) {
  return h("span", { class: `n4a-badge n4a-badge-${color}`, "data-badge": text }, text);
}

/**
 * Horizontal stacked bar with a legend; a segment's `note` is shown in its
 * legend entry (and its tooltip) instead of a bare size.
 * @param {{label: string, value: number, color: string, note?: string, valueText?: string}[]} segments
 * @param {(v: number) => string} [fmt]
 */
export function stackedBar(segments, fmt = formatBytes) {
  const total = segments.reduce((s, x) => s + Math.max(0, x.value), 0);
  const bar = h("div", { class: "n4a-stack" });
  const legend = h("div", { class: "n4a-legend" });
  for (const seg of segments) {
    const share = total > 0 ? (100 * Math.max(0, seg.value)) / total : 0;
    if (share > 0) {
      bar.append(h("div", {
        class: "n4a-stack-seg",
        title: `${seg.label}: ${fmt(seg.value)} (${share.toFixed(1)}%)`,
        style: { width: `${share}%`, background: seg.color },
      }));
    }
    legend.append(h("span", { class: "n4a-legend-item", "data-legend": seg.label, title: seg.note },
      h("span", { class: "n4a-swatch", style: { background: seg.color } }),
      `${seg.label} ${seg.valueText ?? fmt(seg.value)}`));
  }
  return h("div", { class: "n4a-stack-wrap" }, bar, legend);
}

/**
 * A simple table.  Cells are strings or nodes.
 * @param {string[]} columns
 * @param {(string | Node)[][]} rows
 * @param {{empty?: string, className?: string}} [opts]
 */
export function table(columns, rows, opts = {}) {
  const thead = h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", {}, c))));
  const tbody = h("tbody", {});
  if (rows.length === 0) {
    tbody.append(h("tr", {}, h("td", { colspan: String(columns.length), class: "n4a-empty" }, opts.empty ?? "Nothing to show")));
  }
  for (const row of rows) tbody.append(h("tr", {}, ...row.map((cell) => h("td", {}, cell))));
  return h("table", { class: `n4a-table ${opts.className ?? ""}` }, thead, tbody);
}

/**
 * Disable every action button of a widget while a job runs (except Cancel).
 * @param {HTMLElement} root
 * @param {boolean} busy
 */
export function setBusy(root, busy) {
  if (root.dataset.kernelLost) return; // stays frozen: the kernel is gone
  for (const b of root.querySelectorAll("button[data-action]")) {
    const btn = /** @type {HTMLButtonElement} */ (b);
    if (btn.dataset.action !== "cancel") btn.disabled = busy;
  }
}
