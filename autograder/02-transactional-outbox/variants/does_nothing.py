"""Lab 02 variant: every method returns without doing anything (must fail every hidden test)."""


class OrderService:
    def __init__(self, connect, kafka_bootstrap, topic):
        pass

    def place_order(self, order_id, customer, amount):
        pass

    def cancel_order(self, order_id):
        pass


class Relay:
    def __init__(self, connect, kafka_bootstrap, topic):
        pass

    def run_once(self, max_events=500, timeout_s=5.0):
        return 0


class OrderProjection:
    def __init__(self, connect):
        pass

    def handle(self, event):
        pass
