"""TODO: the interface the grader calls, documented here (the book's lab page shows this text).

`{cls}(pg)`: TODO.
"""


class {cls}:
    """TODO: the broken handout: plausible code a competent engineer would write, that fails
    under the lab's faults for the reason the chapter teaches."""

    def __init__(self, pg):
        self.pg = pg
