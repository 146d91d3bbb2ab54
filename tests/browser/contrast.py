"""WCAG contrast of a rendered widget, measured from computed styles.

For every visible element under a widget root that holds text of its own, the
text colour is composited over its *effective* background (the nearest opaque
ancestor background with every translucent layer in between blended on top)
and the WCAG 2 contrast ratio is computed: 4.5:1 for normal text, 3:1 for
large text (24 px, or 18.66 px bold).  Enabled controls (buttons, text
inputs, selects, text areas) need 3:1 between their boundary (border, or
their own fill) and what surrounds them (WCAG 1.4.11).  Disabled controls are
exempt, as WCAG says.  Works through shadow roots (marimo renders widgets in
one) and in any front-end, because it only reads ``getComputedStyle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONTRAST_JS = r"""(root) => {
  const parse = (c) => {
    if (!c || c === "transparent") return [0, 0, 0, 0];
    let m = c.match(/^rgba?\(([^)]+)\)$/);
    if (m) {
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = c.match(/^color\(srgb ([^)]+)\)$/);
    if (m) {
      const p = m[1].split(/[ /]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    // Anything else (oklab, named): let a canvas normalise it.
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.fillStyle = "#000"; ctx.fillStyle = c; ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, bottom) => {  // source-over compositing onto an opaque bottom
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const lum = (c) => {
    const ch = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const parentOf = (el) => el.parentElement || (el.parentNode && el.parentNode.host) || null;
  const effectiveBg = (el) => {
    const layers = [];
    for (let n = el; n; n = parentOf(n)) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [255, 255, 255, 1];  // the browser's canvas when nothing is opaque
    for (let i = layers.length - 1; i >= 0; i -= 1) bg = over(layers[i], bg);
    return bg;
  };
  const opacity = (el) => {  // product of opacities: a faded subtree fades its text too
    let o = 1;
    for (let n = el; n; n = parentOf(n)) o *= Number(getComputedStyle(n).opacity);
    return o;
  };
  const exempt = (el) => el.closest(":disabled, [aria-disabled=true]") !== null;
  const visible = (el) => el.getClientRects().length > 0
    && el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  const describe = (el) => {
    const names = typeof el.className === "string" ? el.className.trim() : "";
    const cls = names ? "." + names.split(/\s+/).join(".") : "";
    return el.tagName.toLowerCase() + cls;
  };
  const fmt = (c) => "rgb(" + c.slice(0, 3).map((v) => Math.round(v)).join(",") + ")";
  const FIELDS = "input[type=text], input[type=number], input[type=search], input:not([type]), select, textarea";
  const out = [];
  const all = [root, ...root.querySelectorAll("*")];
  for (const el of all) {
    if (!visible(el) || exempt(el)) continue;
    const cs = getComputedStyle(el);
    const isField = el.matches(FIELDS);
    const own = isField ? (el.value || "") : Array.from(el.childNodes)
      .filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join("").trim();
    const bg = effectiveBg(el);
    if (own.trim()) {
      const isSvg = el instanceof SVGElement;
      const color = parse(isSvg ? cs.fill : cs.color);
      const fg = over([color[0], color[1], color[2], color[3] * opacity(el)], bg);
      const size = parseFloat(cs.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
      out.push({ kind: "text", what: describe(el), text: own.trim().slice(0, 40), fg: fmt(fg), bg: fmt(bg),
        ratio: ratio(fg, bg), required: large ? 3 : 4.5, faded: opacity(el) < 1 });
    }
    if (el.matches("button, " + FIELDS)) {
      const parent = parentOf(el);
      const around = parent ? effectiveBg(parent) : [255, 255, 255, 1];
      const candidates = [ratio(bg, around)];
      const bw = parseFloat(cs.borderTopWidth) || 0;
      const border = over(parse(cs.borderTopColor), around);
      if (bw > 0 && cs.borderTopStyle !== "none") candidates.push(ratio(border, around));
      out.push({ kind: "control", what: describe(el), text: (el.innerText || el.value || "").trim().slice(0, 40),
        fg: fmt(border), bg: fmt(around), ratio: Math.max(...candidates),
        required: 3, faded: opacity(el) < 1 });
    }
  }
  return out;
}"""


@dataclass(frozen=True)
class Measure:
    kind: str
    what: str
    text: str
    fg: str
    bg: str
    ratio: float
    required: float
    faded: bool

    def __str__(self) -> str:
        return f"{self.ratio:.2f}:1 < {self.required}:1  {self.kind} {self.what} {self.text!r} ({self.fg} on {self.bg})"


def measure(root: Any) -> list[Measure]:
    """All text and control measures of the widget under Playwright locator ``root``."""
    return [Measure(**m) for m in root.evaluate(CONTRAST_JS)]


def failures(measures: list[Measure]) -> list[Measure]:
    return [m for m in measures if m.ratio + 1e-6 < m.required]


def summary(measures: list[Measure]) -> str:
    """Lowest text and control ratios, for the test log and the closing note."""
    text = [m.ratio for m in measures if m.kind == "text"]
    ctl = [m.ratio for m in measures if m.kind == "control"]
    low_ctl = f"{min(ctl):.2f}:1" if ctl else "-"
    return f"{len(text)} texts, min {min(text):.2f}:1; {len(ctl)} controls, min {low_ctl}"
