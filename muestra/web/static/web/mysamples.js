// My samples: "select all on this page" for printing a sheet of labels. Without JavaScript each row is ticked alone.
(function () {
  "use strict";

  function picks() { return Array.prototype.slice.call(document.querySelectorAll("[data-pick]")); }

  function reveal() {
    // The select-all box is useless without this script, so it stays hidden until the script runs.
    var label = document.querySelector("[data-select-all-label]");
    if (label) label.hidden = false;
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement)) return;
    if (target.matches("[data-select-all]")) {
      picks().forEach(function (box) { box.checked = target.checked; });
    } else if (target.matches("[data-pick]")) {
      var all = document.querySelector("[data-select-all]");
      if (!all) return;
      var boxes = picks();
      all.checked = boxes.length > 0 && boxes.every(function (box) { return box.checked; });
      all.indeterminate = !all.checked && boxes.some(function (box) { return box.checked; });
    }
  });
  document.addEventListener("DOMContentLoaded", reveal);
  // The results are replaced by htmx when searching: reveal the new table's box.
  document.addEventListener("htmx:afterSwap", reveal);
})();
