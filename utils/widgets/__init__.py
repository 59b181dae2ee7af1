"""Interactive widgets, one module per idea (``utils.widgets.conv``, ``.gating``,
``.attention``, ``.optim``, ``.sampling``, ...).

Each widget has three layers (DESIGN.md): a pure compute function in the topic module, a view
``plot_<thing>(result, ax=None)`` and a builder ``make_<thing>_widget()`` wired with
``ipywidgets.interactive_output``. The published book has no kernel, so every live view there is
something else:

* :mod:`utils.widgets.browser`: the flagship explorers (convolution, gating, attention) as one HTML
  output with vendored JavaScript and exported weights, computing in the reader's browser on every
  surface (JupyterLab, VS Code, Colab and the static book), tested equal to the Python reference;
* :mod:`utils.widgets.fallback`: a kernel widget displayed together with its static counterpart (the
  default settings drawn), which the book shows instead of dead controls;
* :mod:`utils.widgets.static`: pre-rendered frames behind a slider, in plain JavaScript.
"""

__all__: list[str] = []
