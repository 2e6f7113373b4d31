-- kpisync store: derived, rebuildable KPI facts (core/facts.py writes them, core/metrics reads).
-- Every row here can be rebuilt from the canonical tables (`kpisync kpi --rebuild-facts`), so
-- none of it is ever a source of truth. Instants are unix epoch seconds (INTEGER) so KPI
-- queries do plain integer arithmetic; bh_* columns are business-hours seconds computed with
-- the ticket's schedule (its own schedule_id, else the source's default, else [metrics] override).
-- `tid` is a store-local surrogate for (source, ticket_id): child facts join on one integer.

-- One row per ticket. Excluded tickets (deleted/spam/merged-away) keep a row with
-- `excluded` > 0 and no child facts, so diagnostics can count them.
CREATE TABLE ticket_facts (
    tid INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    excluded INTEGER NOT NULL,          -- 0 counted, 1 deleted, 2 spam, 3 merged away
    outbound INTEGER NOT NULL,
    channel TEXT,
    is_social INTEGER NOT NULL,
    priority TEXT,
    group_id TEXT,
    assignee_id TEXT,
    organization_id TEXT,
    requester_id TEXT,
    resolved_now INTEGER NOT NULL,      -- status category is resolved/closed now
    has_history INTEGER NOT NULL,       -- at least one status event
    first_reply_at INTEGER,
    first_reply_agent TEXT,
    first_reply_group TEXT,
    bh_first_reply INTEGER,
    second_reply_at INTEGER,            -- Zendesk FRT mode for agent-created tickets
    second_reply_agent TEXT,
    bh_second_reply INTEGER,
    agent_replies INTEGER NOT NULL,     -- public agent replies; a chat session counts once
    agent_replies_all INTEGER NOT NULL, -- same, including an agent-written description
    customer_followups INTEGER NOT NULL,
    bot_public INTEGER NOT NULL,        -- public bot/system messages (merge notes excluded)
    first_resolved_at INTEGER,
    last_resolved_at INTEGER,           -- last resolution event, even if reopened since
    reopens INTEGER NOT NULL,
    res_agent TEXT,                     -- assignee at the last resolution event
    res_group TEXT,
    res_automated INTEGER NOT NULL,     -- last resolution performed by a rule/bot
    bh_first_res INTEGER,
    bh_full_res INTEGER,
    requester_wait INTEGER,
    agent_wait INTEGER,
    on_hold INTEGER,
    bh_requester_wait INTEGER,
    bh_agent_wait INTEGER,
    frt_due INTEGER,
    res_due INTEGER,
    fr_od_start INTEGER,                -- first-reply overdue from ..
    fr_od_end INTEGER,                  -- .. until (NULL = still overdue)
    url TEXT,
    UNIQUE (source, ticket_id)
);
CREATE INDEX ticket_facts_created ON ticket_facts (created, excluded, outbound, is_social);
CREATE INDEX ticket_facts_first_reply ON ticket_facts (first_reply_at) WHERE first_reply_at IS NOT NULL;
CREATE INDEX ticket_facts_last_resolved ON ticket_facts (last_resolved_at) WHERE last_resolved_at IS NOT NULL;
CREATE INDEX ticket_facts_fr_od_start ON ticket_facts (fr_od_start) WHERE fr_od_start IS NOT NULL;
CREATE INDEX ticket_facts_fr_od_end ON ticket_facts (fr_od_end, fr_od_start) WHERE fr_od_start IS NOT NULL;

-- Per-ticket events KPIs count: agent replies that answer no customer turn (kind 'reply'; the
-- others are in reply_pairs), resolution events ('resolve'),
-- reopens ('reopen'), macro applications ('macro', ref = macro), handle time ('time' / 'call',
-- seconds; extra = wrap-up seconds of a call). agent/group = the credited agent and group.
CREATE TABLE fact_events (
    tid INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    agent_id TEXT,
    group_id TEXT,
    ref TEXT,
    seconds INTEGER,
    extra INTEGER
);
CREATE INDEX fact_events_kind_at ON fact_events (kind, at, tid, agent_id);
CREATE INDEX fact_events_tid ON fact_events (tid);

-- Customer turn → first agent reply after it (kpi-definitions §A.2). reply_at NULL = unanswered.
CREATE TABLE reply_pairs (
    tid INTEGER NOT NULL,
    customer_at INTEGER NOT NULL,
    reply_at INTEGER,
    agent_id TEXT,
    group_id TEXT,
    seconds INTEGER,
    bh_seconds INTEGER
);
CREATE INDEX reply_pairs_reply ON reply_pairs (reply_at, seconds, bh_seconds, tid, agent_id) WHERE reply_at IS NOT NULL;
CREATE INDEX reply_pairs_unanswered ON reply_pairs (customer_at) WHERE reply_at IS NULL;
CREATE INDEX reply_pairs_tid ON reply_pairs (tid);

-- Unresolved stretches of a ticket with a constant assignee and group: backlog(T) counts spans
-- with start_at <= T < end_at; overdue(T) those with od_start <= T < end_at. The (end_at, start)
-- indexes answer "open at T" from the spans ending after T only, not from the whole history.
CREATE TABLE status_spans (
    tid INTEGER NOT NULL,
    start_at INTEGER NOT NULL,
    end_at INTEGER,
    assignee_id TEXT,
    group_id TEXT,
    od_start INTEGER
);
CREATE INDEX status_spans_start ON status_spans (start_at);
CREATE INDEX status_spans_end ON status_spans (end_at, start_at);
CREATE INDEX status_spans_od_end ON status_spans (end_at, od_start) WHERE od_start IS NOT NULL;
CREATE INDEX status_spans_od_start ON status_spans (od_start) WHERE od_start IS NOT NULL;
CREATE INDEX status_spans_tid ON status_spans (tid);

-- The rating that counts: the latest answer per ticket and kind (or the offer, if unanswered);
-- ratings without a ticket keep one row each (tid NULL).
CREATE TABLE rating_facts (
    source TEXT NOT NULL,
    rating_id TEXT NOT NULL,
    tid INTEGER,
    kind TEXT NOT NULL,
    offered_at INTEGER,
    responded_at INTEGER,
    value REAL,
    scale_min REAL,
    scale_max REAL,
    sentiment INTEGER,
    agent_id TEXT,
    group_id TEXT,
    comment TEXT,
    PRIMARY KEY (source, rating_id)
);
CREATE INDEX rating_facts_responded ON rating_facts (kind, responded_at) WHERE responded_at IS NOT NULL;
CREATE INDEX rating_facts_offered ON rating_facts (kind, offered_at);
CREATE INDEX rating_facts_tid ON rating_facts (tid);

CREATE TABLE ticket_tags (
    tid INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (tid, tag)
) WITHOUT ROWID;
CREATE INDEX ticket_tags_tag ON ticket_tags (tag);

-- Fingerprint of what the facts were computed with (schedules, settings, facts version).
CREATE TABLE facts_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Bot users, read at every refresh: a partial index keeps that read instant on big stores.
CREATE INDEX users_bots ON users (source) WHERE is_bot = 1 OR role IN ('bot', 'system');
