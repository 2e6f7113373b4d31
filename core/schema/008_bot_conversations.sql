-- kpisync store: conversations of the help desk's own AI agent (Zendesk AI agents - Advanced,
-- Data Export API), one row per conversation, keyed like every canonical row. Apart from tickets
-- on purpose: `automated_resolution` is the vendor's LLM-verified verdict (NULL = none given),
-- shown beside kpisync's automated_resolution_rate and never mixed into it.
CREATE TABLE bot_conversations (
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    bot_id TEXT,
    started_at TEXT,
    ended_at TEXT,
    export_day TEXT NOT NULL,
    channel TEXT,
    language TEXT,
    status TEXT,
    escalated INTEGER,
    ticket_id TEXT,
    automated_resolution INTEGER,
    raw TEXT,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);
CREATE INDEX bot_conversations_ended ON bot_conversations (ended_at);
CREATE INDEX bot_conversations_ticket ON bot_conversations (source, ticket_id);
