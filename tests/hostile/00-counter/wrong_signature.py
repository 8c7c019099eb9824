class Counter:
    def __init__(self):  # forgets the redis client and the key
        self.n = 0

    def increment(self):
        self.n += 1
        return self.n
