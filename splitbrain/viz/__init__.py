"""Pictures of what happened: the same Figure renders inline in a notebook, into a grade report
(PNG/SVG via ``save``) and on the site.

* ``spacetime(history, verdict=None)`` — one lane per process, operations as bars by outcome,
  faults shaded, the operations the verdict names (and only they) outlined in red; legible at
  the book's width and in a notebook, where it is an inline SVG whose operations tell their
  call, result and the faults active when the pointer rests on them;
* ``lease_timeline(history, ttl_s)`` — leases with their fencing tokens, accepted/rejected writes;
* ``saga_graph(steps, effects)`` — forward steps, compensations, where sagas ended;
* ``partition_ring(ring, keys, moved=...)`` — shards and keys on a hash ring.

Each returns a matplotlib Figure, or, given ``path=``, saves it there and returns the path.
"""
from splitbrain.viz._common import save
from splitbrain.viz.lease import lease_timeline
from splitbrain.viz.ring import partition_ring
from splitbrain.viz.saga import saga_graph
from splitbrain.viz.spacetime import spacetime

__all__ = ["lease_timeline", "partition_ring", "saga_graph", "save", "spacetime"]
