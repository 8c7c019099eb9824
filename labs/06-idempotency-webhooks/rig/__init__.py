"""Lab 06's trusted code (the webhook sender, the payment API, the receiver's world), imported as
``rig``.

* ``rig.signing``: Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``).
* ``rig.sender``: ``Sender``, a webhook provider: it signs each delivery, retries with backoff when
  the reply is slow or not 2xx, and (through the nemesis) duplicates, reorders, forges and replays.
* ``rig.payments``: ``Payments``, the downstream payment API (trusted, in the grader's process,
  over its own schema) that honours an ``Idempotency-Key``; it can lose a reply or hold a request.
* ``rig.db``: ``connector``, the Postgres connections a receiver gets (commit crash points wired
  in, so a test can kill the receiver right after a COMMIT and before its reply).
* ``rig.world``: ``World``: the receiver in a sandboxed worker behind the fault proxy, the sender,
  the payment API; it sends events, waits until the receiver has settled, and judges.
* ``rig.checkers``: ``duplicate-effect``, ``double-charge``, ``lost-event``, ``stale-overwrite``,
  ``forged-accepted``, pure functions of the history and the tables.
* ``rig.faults``: the lab's own faults (``forged-delivery``, ``replayed-delivery``,
  ``lost-payment-reply``, ``slow-payment``).
"""
