// Loaded between require.js and the widget manager (see _config.yml, nb_ipywidgets_js).
// 1. Tell RequireJS that the manager's files live in this book's _static/html-manager/, so its
//    icon fonts load from there on every page (by default it looks under a CDN-style path).
// 2. The widget manager typesets widget labels with MathJax 2's API (MathJax.Hub.Queue); the book
//    vendors MathJax 3, so provide that one call on top of MathJax 3's typesetPromise.
(function () {
  var src = document.currentScript && document.currentScript.src;
  if (src && typeof require !== "undefined") {
    var base = src.slice(0, src.lastIndexOf("/") + 1);  // .../_static/
    require.config({ paths: { "@jupyter-widgets/html-manager/dist": base + "html-manager",
                              "@jupyter-widgets": base + "html-manager" } });
  }
  function ensureHub() {
    var mj = window.MathJax;
    if (mj && !mj.Hub) {
      mj.Hub = {
        Queue: function () {
          var job = arguments[0], element = job && job[2];
          var mj3 = window.MathJax;
          if (mj3.startup && mj3.startup.promise && mj3.typesetPromise) {
            // queue behind MathJax's own first typesetting of the page
            mj3.startup.promise = mj3.startup.promise
              .then(function () { return mj3.typesetPromise(element ? [element] : undefined); })
              .catch(function () {});
          }
        }
      };
    }
  }
  ensureHub();
  document.addEventListener("DOMContentLoaded", ensureHub);
  window.addEventListener("load", ensureHub, true);
})();
