// Loaded between require.js and the widget manager: tells RequireJS that the manager's files
// live in this book's _static/html-manager/, so its icon fonts load from there on every page
// (by default it looks for them under a CDN-style path relative to the page).
(function () {
  var src = document.currentScript && document.currentScript.src;
  if (!src || typeof require === "undefined") return;
  var base = src.slice(0, src.lastIndexOf("/") + 1);  // .../_static/
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": base + "html-manager" } });
})();
