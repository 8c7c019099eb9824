class Counter(:
    pass
