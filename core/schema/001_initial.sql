-- kpisync store, version 1: the canonical tables.
-- Every canonical row is keyed by (source, external_id); references such as ticket_id hold the
-- external id of the referenced row in the same source. Timestamps are UTC ISO text
-- (YYYY-MM-DDTHH:MM:SSZ); booleans 0/1; JSON columns are text. No FOREIGN KEY constraints on
-- canonical references: streams commit independently, so a message may land before its ticket;
-- the indexes below serve the joins instead.

CREATE TABLE tickets (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    subject TEXT,
    channel TEXT,
    raw_channel TEXT,
    is_social INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    status TEXT NOT NULL,
    status_category TEXT,
    requester_id TEXT,
    submitter_id TEXT,
    organization_id TEXT,
    assignee_id TEXT,
    group_id TEXT,
    brand_id TEXT,
    priority TEXT,
    type TEXT,
    is_outbound INTEGER,
    is_spam INTEGER,
    is_deleted INTEGER,
    is_merged INTEGER,
    merged_into_id TEXT,
    schedule_id TEXT,
    sla_policy_id TEXT,
    first_response_due_at TEXT,
    resolution_due_at TEXT,
    tags TEXT,
    custom TEXT,
    vendor_metrics TEXT,
    url TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE messages (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    author_id TEXT,
    author_role TEXT NOT NULL,
    is_public INTEGER NOT NULL,
    is_automated INTEGER,
    via TEXT,
    channel TEXT,
    chat_session_id TEXT,
    is_shared_external INTEGER,
    body TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE users (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name TEXT,
    email TEXT,
    role TEXT NOT NULL,
    is_bot INTEGER,
    organization_id TEXT,
    segment TEXT,
    hourly_cost REAL,
    time_zone TEXT,
    active INTEGER,
    created_at TEXT,
    updated_at TEXT,
    email_norm TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE groups (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name TEXT,
    created_at TEXT,
    updated_at TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE organizations (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name TEXT,
    tier TEXT,
    attributes TEXT,
    created_at TEXT,
    updated_at TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE ratings (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id TEXT,
    kind TEXT,
    scale_min REAL,
    scale_max REAL,
    raw_value TEXT,
    value REAL,
    sentiment INTEGER,
    offered_at TEXT,
    responded_at TEXT,
    updated_at TEXT,
    agent_id TEXT,
    group_id TEXT,
    comment TEXT,
    reason TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE ticket_status_events (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    at TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    from_category TEXT,
    to_category TEXT NOT NULL,
    actor_id TEXT,
    via TEXT,
    is_synthetic INTEGER,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE ticket_assignment_events (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    at TEXT NOT NULL,
    field TEXT NOT NULL,
    value_id TEXT,
    previous_id TEXT,
    actor_id TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE schedules (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name TEXT,
    tz TEXT NOT NULL,
    intervals TEXT NOT NULL,
    holidays TEXT,
    is_default INTEGER,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE sla_policies (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    title TEXT,
    targets TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE sla_events (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    instance_id TEXT,
    type TEXT NOT NULL,
    at TEXT NOT NULL,
    target_minutes REAL,
    business_hours INTEGER,
    policy_id TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE sla_targets (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    target_at TEXT,
    business_hours INTEGER,
    fulfilled_at TEXT,
    breached_at TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE time_entries (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id TEXT,
    agent_id TEXT,
    seconds INTEGER NOT NULL,
    executed_at TEXT NOT NULL,
    billable INTEGER,
    source_kind TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE calls (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id TEXT,
    agent_id TEXT,
    direction TEXT,
    started_at TEXT NOT NULL,
    talk_s INTEGER,
    hold_s INTEGER,
    wrap_up_s INTEGER,
    wait_s INTEGER,
    status TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE macro_applications (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    macro_id TEXT,
    macro_title TEXT,
    agent_id TEXT,
    applied_at TEXT NOT NULL,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE social_mentions (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    kind TEXT NOT NULL,
    matched_term TEXT,
    author_id TEXT,
    author_handle TEXT,
    author_followers INTEGER,
    text TEXT,
    url TEXT,
    lang TEXT,
    posted_at TEXT NOT NULL,
    is_own_account INTEGER,
    reposts INTEGER,
    likes INTEGER,
    replies INTEGER,
    ticket_id TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE orders (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    customer_id TEXT,
    customer_email TEXT,
    customer_phone TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    total TEXT NOT NULL,
    net_total TEXT,
    currency TEXT NOT NULL,
    status TEXT,
    is_test INTEGER,
    cancelled_at TEXT,
    customer_email_norm TEXT,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_source_created ON tickets (source, created_at);
CREATE INDEX tickets_requester ON tickets (source, requester_id);
CREATE INDEX messages_ticket ON messages (source, ticket_id, created_at);
CREATE INDEX users_email ON users (email_norm);
CREATE INDEX ratings_ticket ON ratings (source, ticket_id);
CREATE INDEX ratings_responded ON ratings (responded_at);
CREATE INDEX status_events_ticket ON ticket_status_events (source, ticket_id, at);
CREATE INDEX assignment_events_ticket ON ticket_assignment_events (source, ticket_id, at);
CREATE INDEX sla_events_ticket ON sla_events (source, ticket_id, at);
CREATE INDEX sla_targets_ticket ON sla_targets (source, ticket_id);
CREATE INDEX time_entries_ticket ON time_entries (source, ticket_id);
CREATE INDEX calls_ticket ON calls (source, ticket_id);
CREATE INDEX macro_applications_ticket ON macro_applications (source, ticket_id);
CREATE INDEX social_mentions_posted ON social_mentions (posted_at);
CREATE INDEX orders_email_created ON orders (customer_email_norm, created_at);

-- Sync bookkeeping. A stream's state is written in the same transaction as the rows it covers.
CREATE TABLE sync_state (
    source TEXT NOT NULL,
    stream TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, stream)
);

CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    connector TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    full_refresh INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    rows_written INTEGER NOT NULL DEFAULT 0,
    streams TEXT,
    notices TEXT,
    error TEXT
);
CREATE INDEX sync_runs_source ON sync_runs (source, started_at);

-- Tickets whose rows changed since derived facts were last refreshed. Filled by the triggers
-- below inside the sync transaction (NOT EXISTS rather than OR IGNORE: an outer upsert's
-- conflict handling overrides a trigger's OR IGNORE), emptied by the facts refresh: a kill in between only
-- means the next refresh does the work.
CREATE TABLE changed_tickets (
    source TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    PRIMARY KEY (source, ticket_id)
) WITHOUT ROWID;

CREATE TRIGGER tickets_insert_marks_ticket AFTER INSERT ON tickets
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.external_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.external_id);
END;

CREATE TRIGGER tickets_update_marks_ticket AFTER UPDATE ON tickets
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.external_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.external_id);
END;

CREATE TRIGGER messages_insert_marks_ticket AFTER INSERT ON messages
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER messages_update_marks_ticket AFTER UPDATE ON messages
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER ratings_insert_marks_ticket AFTER INSERT ON ratings
WHEN NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER ratings_update_marks_ticket AFTER UPDATE ON ratings
WHEN NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER ticket_status_events_insert_marks_ticket AFTER INSERT ON ticket_status_events
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER ticket_status_events_update_marks_ticket AFTER UPDATE ON ticket_status_events
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER ticket_assignment_events_insert_marks_ticket AFTER INSERT ON ticket_assignment_events
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER ticket_assignment_events_update_marks_ticket AFTER UPDATE ON ticket_assignment_events
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER sla_events_insert_marks_ticket AFTER INSERT ON sla_events
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER sla_events_update_marks_ticket AFTER UPDATE ON sla_events
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER sla_targets_insert_marks_ticket AFTER INSERT ON sla_targets
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER sla_targets_update_marks_ticket AFTER UPDATE ON sla_targets
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER time_entries_insert_marks_ticket AFTER INSERT ON time_entries
WHEN NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER time_entries_update_marks_ticket AFTER UPDATE ON time_entries
WHEN NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER calls_insert_marks_ticket AFTER INSERT ON calls
WHEN NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER calls_update_marks_ticket AFTER UPDATE ON calls
WHEN NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER macro_applications_insert_marks_ticket AFTER INSERT ON macro_applications
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;

CREATE TRIGGER macro_applications_update_marks_ticket AFTER UPDATE ON macro_applications
BEGIN
    INSERT INTO changed_tickets (source, ticket_id) SELECT NEW.source, NEW.ticket_id
    WHERE NOT EXISTS (SELECT 1 FROM changed_tickets WHERE source = NEW.source AND ticket_id = NEW.ticket_id);
END;
