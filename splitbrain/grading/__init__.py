"""The autograder: a pytest plugin (``-p splitbrain.grading.plugin``), a runner that grades a
submission in its own pytest process, typed results, reports, and ``verify``.

Hidden tests fail with ``expect_valid(verdict, history, hint=...)``.
"""
from splitbrain.grading.explain import expect_valid

__all__ = ["expect_valid"]
