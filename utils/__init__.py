"""Companion package of the executable textbook *Large Models, Hands-On*.

One module per idea, each named after the chapter that explains it:

- :mod:`utils.env` -- seeding, device choice, Colab detection, the offline switch
  (chapter 1, "How to use this book").
- :mod:`utils.data` -- the bundled 8x8 digits and synthetic sequence tasks.
- :mod:`utils.training` -- a generic train/evaluate loop with progress bars.
- :mod:`utils.plotting` -- the book's figure style and common plots.
- :mod:`utils.checks` -- lab checkers that explain the first mismatch.
- :mod:`utils.attention`, :mod:`utils.pretrained`, ... -- one module per later chapter.

Importing :mod:`utils` has no side effects: nothing is seeded and no matplotlib setting
changes until a function asks for it.
"""

__version__ = "0.1.0"
BOOK_TITLE = "Large Models, Hands-On"

__all__ = ["__version__", "BOOK_TITLE"]
