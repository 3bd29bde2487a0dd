// The backlog page's drag to reorder (SortableJS, vendored). A dropped row posts the item it now
// sits above (or, on the last row of a page, the first item of the next page; empty: the bottom)
// and the server's list replaces the table, so positions always come from the database.
(function () {
  "use strict";
  function bind(root) {
    root.querySelectorAll("tbody[data-sortable]").forEach(function (body) {
      if (body.dataset.bound) return;
      body.dataset.bound = "1";
      window.Sortable.create(body, {
        handle: ".drag-handle",
        forceFallback: true, // mouse and touch events rather than native drag and drop: the same on every device
        animation: 150,
        onEnd: function (event) {
          if (event.oldIndex === event.newIndex) return;
          var row = event.item;
          var next = row.nextElementSibling;
          var before = next ? next.dataset.itemId : body.dataset.following || "";
          window.htmx.ajax("POST", row.dataset.moveUrl, {
            source: row,
            target: "#backlog-list",
            swap: "outerHTML",
            values: { before: before },
          });
        },
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { bind(document); });
  document.addEventListener("htmx:afterSettle", function () { bind(document); });
})();
