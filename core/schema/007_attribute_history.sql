-- kpisync store, version 7: the observed history of the attributes customer segments come from,
-- so `--by segment` takes an organization's tier/attributes or a requester's segment as they were
-- when the ticket was created (kpi-definitions item 20). No vendor API gives attribute history;
-- our own syncs see the changes: the upserts of core/store.py only UPDATE a row whose content
-- changed, and the triggers below record each new value set of these columns.
--
-- One row per observed value set of one owner: `valid_from` (unix seconds) is when it began.
-- * The first observation gets valid_from 0: the first-seen value also applies to every earlier
--   ticket, because nothing older was observed (the documented limit; backfilled rows too).
-- * A later change gets the record's vendor `updated_at` (the last change of anything on the
--   record, so a tier change is dated at the latest edit the sync saw), else the row's
--   `synced_at` — and at least 1 s after the owner's latest row, so rows only grow forward
--   and the latest one is always the current value.
-- * An owner first seen without any value gets no row until its first change; that change
--   then records the empty value at 0 and the new one at its time (OLD still holds the former).
--   A ticket whose owner has no row uses the current value (core/metrics/query.py).
-- * Deleting an organization or user row deletes its history: like before, its tickets go to
--   the `unknown` segment, and a row that comes back is first-seen again (the insert triggers
--   also clear any stale rows first, so an insert can never fail on this table's key).
-- The triggers use no INSERT OR REPLACE / OR IGNORE: SQLite applies the conflict clause of the
-- statement that fired a trigger (the store's upsert) to the statements inside it instead
-- (sqlite.org/lang_createtrigger.html), so they test with NOT EXISTS and DELETE.
-- Organizations record tier + attributes, users their `segment` JSON (in `attributes`).
-- The primary key is the lookup: (source, owner, external_id) = and valid_from <= created,
-- the greatest first — one seek in this WITHOUT ROWID B-tree, the value columns alongside.

CREATE TABLE attribute_history (
    source TEXT NOT NULL,
    owner TEXT NOT NULL,                -- 'organization' or 'user'
    external_id TEXT NOT NULL,
    valid_from INTEGER NOT NULL,        -- unix seconds; 0 = first observation
    tier TEXT,                          -- organizations.tier (NULL for users)
    attributes TEXT,                    -- organizations.attributes or users.segment (JSON text)
    PRIMARY KEY (source, owner, external_id, valid_from)
) WITHOUT ROWID;

INSERT INTO attribute_history (source, owner, external_id, valid_from, tier, attributes)
SELECT source, 'organization', external_id, 0, tier, attributes FROM organizations
WHERE tier IS NOT NULL OR attributes IS NOT NULL;

INSERT INTO attribute_history (source, owner, external_id, valid_from, tier, attributes)
SELECT source, 'user', external_id, 0, NULL, segment FROM users
WHERE segment IS NOT NULL;

CREATE TRIGGER organizations_history_insert AFTER INSERT ON organizations
WHEN NEW.tier IS NOT NULL OR NEW.attributes IS NOT NULL
BEGIN
    DELETE FROM attribute_history WHERE source = NEW.source AND owner = 'organization' AND external_id = NEW.external_id;
    INSERT INTO attribute_history (source, owner, external_id, valid_from, tier, attributes)
    VALUES (NEW.source, 'organization', NEW.external_id, 0, NEW.tier, NEW.attributes);
END;

CREATE TRIGGER organizations_history_update AFTER UPDATE OF tier, attributes ON organizations
WHEN OLD.tier IS NOT NEW.tier OR OLD.attributes IS NOT NEW.attributes
BEGIN
    INSERT INTO attribute_history (source, owner, external_id, valid_from, tier, attributes)
    SELECT OLD.source, 'organization', OLD.external_id, 0, OLD.tier, OLD.attributes
    WHERE NOT EXISTS (SELECT 1 FROM attribute_history
                      WHERE source = OLD.source AND owner = 'organization' AND external_id = OLD.external_id);
    INSERT INTO attribute_history (source, owner, external_id, valid_from, tier, attributes)
    SELECT NEW.source, 'organization', NEW.external_id,
           max(coalesce(CAST(strftime('%s', NEW.updated_at) AS INTEGER),
                        CAST(strftime('%s', NEW.synced_at) AS INTEGER), 0),
               (SELECT max(h.valid_from) FROM attribute_history h
                WHERE h.source = NEW.source AND h.owner = 'organization' AND h.external_id = NEW.external_id) + 1),
           NEW.tier, NEW.attributes;
END;

CREATE TRIGGER organizations_history_delete AFTER DELETE ON organizations
BEGIN
    DELETE FROM attribute_history
    WHERE source = OLD.source AND owner = 'organization' AND external_id = OLD.external_id;
END;

CREATE TRIGGER users_history_insert AFTER INSERT ON users
WHEN NEW.segment IS NOT NULL
BEGIN
    DELETE FROM attribute_history WHERE source = NEW.source AND owner = 'user' AND external_id = NEW.external_id;
    INSERT INTO attribute_history (source, owner, external_id, valid_from, tier, attributes)
    VALUES (NEW.source, 'user', NEW.external_id, 0, NULL, NEW.segment);
END;

CREATE TRIGGER users_history_update AFTER UPDATE OF segment ON users
WHEN OLD.segment IS NOT NEW.segment
BEGIN
    INSERT INTO attribute_history (source, owner, external_id, valid_from, tier, attributes)
    SELECT OLD.source, 'user', OLD.external_id, 0, NULL, OLD.segment
    WHERE NOT EXISTS (SELECT 1 FROM attribute_history
                      WHERE source = OLD.source AND owner = 'user' AND external_id = OLD.external_id);
    INSERT INTO attribute_history (source, owner, external_id, valid_from, tier, attributes)
    SELECT NEW.source, 'user', NEW.external_id,
           max(coalesce(CAST(strftime('%s', NEW.updated_at) AS INTEGER),
                        CAST(strftime('%s', NEW.synced_at) AS INTEGER), 0),
               (SELECT max(h.valid_from) FROM attribute_history h
                WHERE h.source = NEW.source AND h.owner = 'user' AND h.external_id = NEW.external_id) + 1),
           NULL, NEW.segment;
END;

CREATE TRIGGER users_history_delete AFTER DELETE ON users
BEGIN
    DELETE FROM attribute_history
    WHERE source = OLD.source AND owner = 'user' AND external_id = OLD.external_id;
END;
