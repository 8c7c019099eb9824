"""TODO: the fixed component a senior engineer would ship (same interface as the handout)."""


class {cls}:
    def __init__(self, pg):
        self.pg = pg
