// A signature drawn with a finger or a mouse on a <canvas>, sent as a data:image/png URL.

import { h } from "./dom.js";

/** @returns {{el: HTMLElement, isEmpty: () => boolean, dataUrl: () => string, clear: () => void}} */
export function signaturePad(testid) {
  const canvas = h("canvas", { class: "sign-pad", testid, "aria-label": "在此手写签名" });
  let drawn = false;
  let last = null;

  // The canvas's pixel size follows its CSS size (set once shown; a phone's width varies).
  function fit() {
    const r = canvas.getBoundingClientRect();
    if (r.width && (canvas.width !== Math.round(r.width) || canvas.height !== Math.round(r.height))) {
      canvas.width = Math.round(r.width);
      canvas.height = Math.round(r.height);
      drawn = false;
    }
  }
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  canvas.addEventListener("pointerdown", (e) => {
    fit();
    canvas.setPointerCapture(e.pointerId);
    last = point(e);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!last) return;
    const p = point(e);
    const ctx = canvas.getContext("2d");
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    ctx.strokeStyle = "#111";
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
    drawn = true;
  });
  const stop = () => { last = null; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);

  return {
    el: canvas,
    isEmpty: () => !drawn,
    dataUrl: () => canvas.toDataURL("image/png"),
    clear() {
      canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
      drawn = false;
    },
  };
}
