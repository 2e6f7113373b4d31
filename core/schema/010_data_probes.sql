-- kpisync store: indexes that answer "does source X have this kind of data at all?" at once.
-- A KPI asks it before computing (core/metrics: a `Need`); without these, a source lacking the
-- data (Freshdesk and Helprace status history says nothing of who made a change; a help desk
-- without SLA due dates or NPS) had every one of its rows read to find none — 1 s per KPI call
-- at 1M tickets. Partial indexes hold only the rows that answer yes.
CREATE INDEX status_events_via ON ticket_status_events (source) WHERE via IS NOT NULL;
CREATE INDEX ticket_facts_bots ON ticket_facts (source) WHERE bot_public > 0;
CREATE INDEX ticket_facts_due ON ticket_facts (source) WHERE res_due IS NOT NULL OR frt_due IS NOT NULL;
CREATE INDEX ratings_kind ON ratings (source, kind);
