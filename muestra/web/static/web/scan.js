/*
 * Muestra scanning helper (shared by every staff screen that scans barcodes). Vanilla JavaScript, no inline code.
 *
 * Contract:
 *   <form ... hx-post="..." hx-target="find [data-scan-feedback]">      (htmx optional: a plain POST works too)
 *     <input data-scan ...>                 Enter submits (keyboard-wedge scanners type the code then Enter);
 *                                           the input is cleared and focused again after each htmx answer.
 *     <div data-scan-feedback aria-live="polite"></div>   receives the server's answer; an element inside it with
 *                                           data-scan-outcome="ok|warn|error" gives a beep (WebAudio) and a flash.
 *   </form>
 * Optional attributes on the input: data-scan-camera-label / data-scan-camera-stop-label (translated button texts),
 * data-scan-error-label (shown when the server cannot be reached).
 * A "Scan with camera" button is added only where navigator.mediaDevices and BarcodeDetector exist; it decodes
 * Code 128 and QR codes from the camera, fills the input and submits.
 * Scans made while an htmx request is in flight are queued and sent one after the other, in order.
 */
(function () {
  "use strict";

  var FLASH = { ok: "#bfe8cb", warn: "#ffe3a0", error: "#f6c4c4" };
  var audio = null;

  // --- sound -------------------------------------------------------------------------------------------------

  function audioContext() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!audio) {
      try { audio = new Ctx(); } catch (e) { return null; }
    }
    if (audio.state === "suspended" && audio.resume) audio.resume().catch(function () {});
    return audio;
  }

  function tone(ctx, start, freq, duration, type) {
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.type = type;
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.25, start + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + duration);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start);
    osc.stop(start + duration + 0.02);
  }

  function beep(outcome) {
    var ctx = audioContext();
    if (!ctx) return;
    var t = ctx.currentTime + 0.01;
    if (outcome === "ok") {
      tone(ctx, t, 1046, 0.12, "sine");
    } else if (outcome === "warn") {
      tone(ctx, t, 660, 0.1, "triangle");
      tone(ctx, t + 0.16, 660, 0.1, "triangle");
    } else {
      tone(ctx, t, 196, 0.4, "square");
    }
  }

  // Browsers only start audio after a gesture: the first key or tap on the page unlocks it.
  function unlockAudio() {
    audioContext();
    document.removeEventListener("keydown", unlockAudio, true);
    document.removeEventListener("pointerdown", unlockAudio, true);
  }
  document.addEventListener("keydown", unlockAudio, true);
  document.addEventListener("pointerdown", unlockAudio, true);

  // --- flash -------------------------------------------------------------------------------------------------

  function flash(el, outcome) {
    if (!el || !el.animate) return;
    var reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    el.animate(
      [{ backgroundColor: FLASH[outcome] || FLASH.error }, { backgroundColor: "transparent" }],
      { duration: reduced ? 200 : 900, easing: "ease-out" }
    );
  }

  function signal(container, withSound) {
    if (!container) return;
    var marked = container.matches && container.matches("[data-scan-outcome]")
      ? container
      : container.querySelector("[data-scan-outcome]");
    if (!marked) return;
    var outcome = marked.getAttribute("data-scan-outcome");
    if (withSound) beep(outcome);
    flash(marked, outcome);
    var form = container.closest ? container.closest("form") : null;
    var input = form ? form.querySelector("input[data-scan]") : null;
    if (input) flash(input, outcome);
  }

  // --- submitting --------------------------------------------------------------------------------------------

  function isHtmxForm(form) {
    return !!(window.htmx && form && (form.hasAttribute("hx-post") || form.hasAttribute("hx-get")));
  }

  function submit(input) {
    var form = input.form;
    if (!form || !input.value.trim()) return;
    if (isHtmxForm(form) && form.dataset.scanBusy === "1") {
      // A scanner can be faster than the server: keep the code and send it when the previous answer is in.
      var queue = form._scanQueue || (form._scanQueue = []);
      queue.push(input.value);
      input.value = "";
      return;
    }
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  }

  function afterRequest(form, failed) {
    form.dataset.scanBusy = "";
    var input = form.querySelector("input[data-scan]");
    if (!input) return;
    if (failed) {
      var box = form.querySelector("[data-scan-feedback]");
      if (box) {
        var p = document.createElement("p");
        p.className = "feedback error";
        p.setAttribute("data-scan-outcome", "error");
        p.setAttribute("role", "alert");
        p.textContent = input.getAttribute("data-scan-error-label") ||
          "The server could not be reached. Scan the tube again.";
        box.replaceChildren(p);
        signal(box, true);
      }
    }
    if (failed) {
      input.select();  // keep the code: the scan was not recorded
    } else {
      input.value = "";
    }
    var queue = form._scanQueue || [];
    if (queue.length) {
      input.value = queue.shift();
      submit(input);
    }
    input.focus();
  }

  // --- camera ------------------------------------------------------------------------------------------------

  function cameraSupported() {
    return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && "BarcodeDetector" in window);
  }

  function addCamera(input) {
    var button = document.createElement("button");
    var startLabel = input.getAttribute("data-scan-camera-label") || "Scan with camera";
    var stopLabel = input.getAttribute("data-scan-camera-stop-label") || "Stop camera";
    button.type = "button";
    button.className = "plain scan-camera";
    button.textContent = startLabel;
    button.setAttribute("aria-pressed", "false");
    (input.parentNode || input.form).appendChild(button);
    var stream = null;
    var video = null;
    var timer = null;

    function stop() {
      if (timer) window.clearTimeout(timer);
      timer = null;
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null;
      if (video) video.remove();
      video = null;
      button.textContent = startLabel;
      button.setAttribute("aria-pressed", "false");
    }

    function detectLoop(detector) {
      if (!video) return;
      var next = function () { timer = window.setTimeout(function () { detectLoop(detector); }, 200); };
      if (video.readyState < 2) { next(); return; }
      detector.detect(video).then(function (codes) {
        var found = codes && codes.length ? codes[0].rawValue : "";
        if (found) {
          stop();
          input.value = found;
          submit(input);
        } else {
          next();
        }
      }).catch(next);
    }

    button.addEventListener("click", function () {
      if (stream) { stop(); input.focus(); return; }
      var wanted = ["code_128", "qr_code", "code_39", "ean_13", "data_matrix"];
      var formats = window.BarcodeDetector.getSupportedFormats
        ? window.BarcodeDetector.getSupportedFormats()
        : Promise.resolve(wanted);
      formats.then(function (supported) {
        var use = wanted.filter(function (f) { return supported.indexOf(f) !== -1; });
        var detector = new window.BarcodeDetector(use.length ? { formats: use } : undefined);
        return navigator.mediaDevices
          .getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
          .then(function (s) {
            stream = s;
            video = document.createElement("video");
            video.className = "scan-camera-view";
            video.setAttribute("playsinline", "");
            video.muted = true;
            video.srcObject = s;
            var row = input.closest(".scan-row") || input;
            row.insertAdjacentElement("afterend", video);
            button.textContent = stopLabel;
            button.setAttribute("aria-pressed", "true");
            return video.play().then(function () { detectLoop(detector); });
          });
      }).catch(function () {
        stop();
        beep("error");
      });
    });
  }

  // --- wiring ------------------------------------------------------------------------------------------------

  function init(root) {
    var inputs = (root || document).querySelectorAll("input[data-scan]");
    Array.prototype.forEach.call(inputs, function (input) {
      if (input.dataset.scanReady) return;
      input.dataset.scanReady = "1";
      input.addEventListener("keydown", function (event) {
        if (event.key !== "Enter" || event.isComposing) return;
        event.preventDefault();
        submit(input);
      });
      if (cameraSupported()) addCamera(input);
    });
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail && event.detail.elt;
    if (form && form.tagName === "FORM" && form.querySelector("input[data-scan]")) form.dataset.scanBusy = "1";
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail && event.detail.elt;
    if (form && form.tagName === "FORM" && form.querySelector("input[data-scan]")) {
      afterRequest(form, !event.detail.successful);
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.closest && target.closest("[data-scan-feedback]")) signal(target, true);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    init(event.detail && event.detail.elt ? event.detail.elt.parentNode || document : document);
  });

  function start() {
    init(document);
    // After a plain (no-JavaScript-like) POST and redirect, the answer is already on the page: flash it.
    Array.prototype.forEach.call(document.querySelectorAll("[data-scan-feedback]"), function (box) {
      signal(box, true);
    });
    document.documentElement.setAttribute("data-scan-ready", "1");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
