"""Interactive widgets, one module per idea (``utils.widgets.conv``, ``.gating``,
``.attention``, ``.optim``, ``.sampling``, ...).

Each widget has three layers (DESIGN.md): a pure compute function in the topic module, a view
``plot_<thing>(result, ax=None)`` and a builder ``make_<thing>_widget()`` wired with
``ipywidgets.interactive_output``. For the published book, which has no kernel,
:mod:`utils.widgets.static` turns pre-rendered frames into a slider that works with plain
JavaScript, no kernel and no network.
"""

__all__: list[str] = []
