"""Answers "compensated" to everything and calls nobody: must fail every hidden test."""
class Orchestrator:
    def __init__(self, pg_url, participants, step_timeout_s=1.0):
        pass
    def book(self, saga_id, order):
        return "compensated"
    def recover(self):
        return {}
