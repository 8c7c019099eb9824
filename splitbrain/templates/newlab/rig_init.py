"""The trusted side of lab {number}: TODO: the world its tests build, its checker, its faults.

Imported as ``rig`` by the hidden tests, the public tests, the notebook and (for ``Ref("rig.x:y")``
helpers) the sandboxed workers; see ``splitbrain.rig``.
"""
