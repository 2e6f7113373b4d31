-- A fingerprint of each ticket's rows in every child fact table (fact_events, reply_pairs,
-- status_spans, rating_facts, ticket_tags), 8 bytes per table. An incremental refresh reads the
-- stored child rows only of the tables whose fingerprint changed: most changes (a new reply on an
-- old ticket) touch one or two tables, and reading the others' rows scattered over all history
-- was a third of a refresh. NULL (rows built before this column) = unknown: read them all.
ALTER TABLE ticket_facts ADD COLUMN digests BLOB;

-- A row that moves to another ticket, or goes, changes the facts of the ticket it leaves as well:
-- 001's triggers mark only the ticket a row arrives at (e.g. a rating re-linked by the vendor left
-- its old ticket's facts counting it until that ticket changed for another reason).
CREATE TRIGGER tickets_delete_marks_ticket AFTER DELETE ON tickets
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.external_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.external_id);
END;

CREATE TRIGGER messages_move_marks_old_ticket AFTER UPDATE OF ticket_id ON messages
WHEN OLD.ticket_id IS NOT NULL AND OLD.ticket_id IS NOT NEW.ticket_id
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER messages_delete_marks_ticket AFTER DELETE ON messages
WHEN OLD.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER ratings_move_marks_old_ticket AFTER UPDATE OF ticket_id ON ratings
WHEN OLD.ticket_id IS NOT NULL AND OLD.ticket_id IS NOT NEW.ticket_id
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER ratings_delete_marks_ticket AFTER DELETE ON ratings
WHEN OLD.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER ticket_status_events_move_marks_old_ticket AFTER UPDATE OF ticket_id ON ticket_status_events
WHEN OLD.ticket_id IS NOT NULL AND OLD.ticket_id IS NOT NEW.ticket_id
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER ticket_status_events_delete_marks_ticket AFTER DELETE ON ticket_status_events
WHEN OLD.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER ticket_assignment_events_move_marks_old_ticket AFTER UPDATE OF ticket_id ON ticket_assignment_events
WHEN OLD.ticket_id IS NOT NULL AND OLD.ticket_id IS NOT NEW.ticket_id
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER ticket_assignment_events_delete_marks_ticket AFTER DELETE ON ticket_assignment_events
WHEN OLD.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER sla_events_move_marks_old_ticket AFTER UPDATE OF ticket_id ON sla_events
WHEN OLD.ticket_id IS NOT NULL AND OLD.ticket_id IS NOT NEW.ticket_id
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER sla_events_delete_marks_ticket AFTER DELETE ON sla_events
WHEN OLD.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER sla_targets_move_marks_old_ticket AFTER UPDATE OF ticket_id ON sla_targets
WHEN OLD.ticket_id IS NOT NULL AND OLD.ticket_id IS NOT NEW.ticket_id
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER sla_targets_delete_marks_ticket AFTER DELETE ON sla_targets
WHEN OLD.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER time_entries_move_marks_old_ticket AFTER UPDATE OF ticket_id ON time_entries
WHEN OLD.ticket_id IS NOT NULL AND OLD.ticket_id IS NOT NEW.ticket_id
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER time_entries_delete_marks_ticket AFTER DELETE ON time_entries
WHEN OLD.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER calls_move_marks_old_ticket AFTER UPDATE OF ticket_id ON calls
WHEN OLD.ticket_id IS NOT NULL AND OLD.ticket_id IS NOT NEW.ticket_id
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER calls_delete_marks_ticket AFTER DELETE ON calls
WHEN OLD.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER macro_applications_move_marks_old_ticket AFTER UPDATE OF ticket_id ON macro_applications
WHEN OLD.ticket_id IS NOT NULL AND OLD.ticket_id IS NOT NEW.ticket_id
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;

CREATE TRIGGER macro_applications_delete_marks_ticket AFTER DELETE ON macro_applications
WHEN OLD.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT OLD.source, OLD.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = OLD.source AND ticket_id = OLD.ticket_id);
END;
