/* Registration form: keyboard flow, document-dependent fields, focus after a patient look-up, one submit.
 *
 *   Enter               next field (on the document number: look the patient up first)
 *   Enter on the last   save and register the next (the tube barcode; a scanner sends Enter after the code)
 *   Ctrl/Cmd + Enter    save and register the next, from anywhere
 *
 * Everything works without this file too: the form then submits on Enter like any form.
 */
(function () {
  "use strict";

  var form = document.getElementById("registration-form");
  if (!form) { return; }
  var lookupByEnter = false;

  function fieldBox(id) { return document.getElementById("field-" + id); }

  function selectedOption(select) {
    return select && select.selectedIndex >= 0 ? select.options[select.selectedIndex] : null;
  }

  /* Passports need their issuing country, "no document" has no number, a newborn needs a guardian. */
  function syncDocument() {
    var option = selectedOption(document.getElementById("id_document_type"));
    var data = option ? option.dataset : {};
    var number = fieldBox("document_number");
    var issuer = fieldBox("document_issuer");
    var guardian = document.getElementById("guardian-fields");
    if (number) { number.hidden = !!data.noNumber; }
    if (issuer) { issuer.hidden = !data.needsIssuer; }
    if (guardian) { guardian.hidden = !data.newborn; }
    var guardianOption = selectedOption(document.getElementById("id_guardian_document_type"));
    var guardianIssuer = fieldBox("guardian_document_issuer");
    if (guardianIssuer) { guardianIssuer.hidden = !(guardianOption && guardianOption.dataset.needsIssuer); }
  }

  function focusable() {
    return Array.prototype.filter.call(
      form.querySelectorAll("input:not([type=hidden]), select, textarea, button[type=submit]"),
      function (el) { return !el.disabled && el.offsetParent !== null; }
    );
  }

  function focusNext(from) {
    var items = focusable();
    var index = items.indexOf(from);
    if (index >= 0 && index + 1 < items.length) { items[index + 1].focus(); }
  }

  function focusField(id) {
    var el = document.getElementById(id);
    if (el && el.offsetParent !== null) { el.focus(); return true; }
    return false;
  }

  var submitting = false;
  function submitForm() {
    if (submitting) { return; }
    if (typeof form.requestSubmit === "function") { form.requestSubmit(document.getElementById("save-next")); }
    else { form.submit(); }
  }

  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.isComposing) { return; }
    var target = event.target;
    if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      submitForm();
      return;
    }
    if (target.tagName === "BUTTON" || target.tagName === "TEXTAREA" || target.tagName === "A") { return; }
    if (target.hasAttribute("data-last-field")) {
      /* "Save and register the next". With a code typed, the browser (or scan.js, for scanners) submits;
         the tube barcode is optional, so an empty one submits here. */
      if (!target.value.trim()) { event.preventDefault(); submitForm(); }
      return;
    }
    event.preventDefault();
    if (target.hasAttribute("data-lookup") && window.htmx) {
      if (lookupKey() === lastLookup) { afterLookup(true); return; }  // already looked up: just move on
      lookupByEnter = true;
      window.htmx.trigger(target, "lookup");
      return;
    }
    focusNext(target);
  });

  /* One submit per page view: a double press, or a scanner's Enter with another handler, sends it once. */
  form.addEventListener("submit", function (event) {
    if (submitting) { event.preventDefault(); return; }
    submitting = true;
    form.setAttribute("aria-busy", "true");
  });
  window.addEventListener("pageshow", function () { submitting = false; form.removeAttribute("aria-busy"); });

  form.addEventListener("change", function (event) {
    if (event.target.id === "id_document_type" || event.target.id === "id_guardian_document_type") { syncDocument(); }
  });

  /* Marks a field (in)valid from the message slot next to it. */
  function markFromSlot(slot) {
    if (!slot) { return; }
    var input = document.getElementById(slot.id.replace(/_error$/, ""));
    var invalid = slot.textContent.trim() !== "";
    if (input) { input.setAttribute("aria-invalid", invalid ? "true" : "false"); }
    var box = slot.closest(".field");
    if (box) { box.classList.toggle("has-error", invalid); }
  }

  var focusedBeforeSwap = null;
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    /* The field being typed in when the patient details are replaced gets the focus back afterwards. */
    var active = document.activeElement;
    var target = event.detail.target;
    focusedBeforeSwap = active && target && target.contains(active) ? active.id : null;
  });

  /* The document as looked up last: the same one is not asked again (Enter after a Tab, a second blur). */
  var lastLookup = null;
  function lookupKey() {
    var parts = ["id_document_type", "id_document_number", "id_document_issuer"].map(function (id) {
      var el = document.getElementById(id);
      return el ? el.value.trim() : "";
    });
    return parts.join("|");
  }

  function isLookup(event) {
    var elt = event.detail && event.detail.elt;
    return !!(elt && elt.hasAttribute && elt.hasAttribute("data-lookup"));
  }

  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (!isLookup(event)) { return; }
    var key = lookupKey();
    if (key === lastLookup) { event.preventDefault(); return; }
    lastLookup = key;
  });

  /* Where the person goes after a look-up answered: back to a wrong number; for a known patient on to what is
     left of the sample (a point-of-care result, then the tube); for a new one to their names. Only when they
     pressed Enter, or when the field they were in was replaced; never while they type somewhere else. */
  function afterLookup(byEnter) {
    var lost = !document.activeElement || document.activeElement === document.body;
    if (!byEnter && !lost) { return; }
    var numberError = document.getElementById("id_document_number_error");
    if (numberError && numberError.textContent.trim()) { focusField("id_document_number"); return; }
    var status = document.querySelector("#patient-status [data-patient-status]");
    if (status && status.getAttribute("data-patient-status") === "known") {
      var result = document.getElementById("result-fields");
      if (!(result && !result.hidden && focusField("id_result"))) { focusField("id_tube_code"); }
    } else if (!(focusedBeforeSwap && focusField(focusedBeforeSwap))) {
      focusField("id_given_names");
    }
  }

  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (!isLookup(event)) { return; }
    if (!event.detail.successful) { lastLookup = null; }
    syncDocument();
    markFromSlot(document.getElementById("id_document_number_error"));
    afterLookup(lookupByEnter);
    lookupByEnter = false;
    focusedBeforeSwap = null;
  });

  document.body.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (target && target.classList.contains("field-error")) { markFromSlot(target); }  // a live check answered
  });

  /* After a refused submit, go to the first field that needs attention. */
  var firstInvalid = form.querySelector("[aria-invalid=true]");
  if (firstInvalid && firstInvalid.offsetParent !== null) { firstInvalid.focus(); }
  else if (document.getElementById("form-errors")) { document.getElementById("form-errors").focus(); }

  syncDocument();
})();
