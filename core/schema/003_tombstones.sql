-- kpisync store, version 3: tombstones — rows a source no longer returns.
-- Some APIs (Helprace) cannot say "this ticket was deleted": the ticket just stops appearing in
-- the full listing. A connector that notices (and confirms, e.g. with a 404 on the item) yields a
-- tombstone record for it; the trigger below flags the canonical row in the same transaction,
-- so the row keeps every other column (and its raw payload) and KPIs exclude it. A row that
-- comes back later is simply upserted again by its connector with is_deleted = 0.
-- external_id is "<object_table>:<object_id>" so one table serves every kind of object.
-- Only tickets are flagged today; other object tables just keep the tombstone as a record.
-- The record class is kpisync.connectors.helprace.records.Tombstone (move it to core/models.py
-- when a second connector needs it).

CREATE TABLE tombstones (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    object_table TEXT NOT NULL,
    object_id TEXT NOT NULL,
    vanished_at TEXT NOT NULL,
    reason TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);
CREATE INDEX tombstones_object ON tombstones (source, object_table, object_id);

CREATE TRIGGER tombstones_insert_flags_ticket AFTER INSERT ON tombstones
WHEN NEW.object_table = 'tickets'
BEGIN
    UPDATE tickets SET is_deleted = 1, status_category = 'deleted'
    WHERE source = NEW.source AND external_id = NEW.object_id;
END;

CREATE TRIGGER tombstones_update_flags_ticket AFTER UPDATE ON tombstones
WHEN NEW.object_table = 'tickets'
BEGIN
    UPDATE tickets SET is_deleted = 1, status_category = 'deleted'
    WHERE source = NEW.source AND external_id = NEW.object_id;
END;
