-- Shipment statuses of one order (GET /orders/{id}): a partial index over the shipments topic's
-- rows of the outbox only, so the allocations on the hot path pay nothing for it.
CREATE INDEX outbox_shipment_statuses ON outbox (key, seq) WHERE topic = 3;
