-- Lab 02: the order service's tables, applied by the grader to each test's own database.
-- Your component may use every table here; it may also create its own (CREATE TABLE IF NOT EXISTS).

-- The order service's state. An order is 'placed', and later maybe 'cancelled'.
CREATE TABLE orders (
    id          text PRIMARY KEY,
    customer    text NOT NULL,
    amount      integer NOT NULL CHECK (amount > 0),
    status      text NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Events waiting to be published, written in the same transaction as the change they describe.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,          -- commit-ish order: the relay publishes by id
    aggregate_id  text NOT NULL,                  -- the order id; also the Kafka record key
    event_id      text NOT NULL UNIQUE,           -- what consumers deduplicate on
    payload       jsonb NOT NULL,                 -- the event exactly as it goes on the topic
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz                     -- NULL until the broker acknowledged it
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_pending_by_aggregate ON outbox (aggregate_id, id) WHERE published_at IS NULL;

-- The consumer side: a read model another service keeps from the OrderPlaced/OrderCancelled
-- events (in production it would live in that service's own database).
CREATE TABLE order_view (
    order_id  text PRIMARY KEY,
    customer  text NOT NULL,
    amount    integer NOT NULL,
    status    text NOT NULL
);
CREATE TABLE customer_stats (
    customer   text PRIMARY KEY,
    placed     integer NOT NULL DEFAULT 0,   -- OrderPlaced events applied
    cancelled  integer NOT NULL DEFAULT 0,   -- OrderCancelled events applied
    spent      bigint  NOT NULL DEFAULT 0    -- sum of the amounts of orders not cancelled
);
-- Event ids the consumer has already applied.
CREATE TABLE processed_events (
    event_id      text PRIMARY KEY,
    processed_at  timestamptz NOT NULL DEFAULT now()
);
