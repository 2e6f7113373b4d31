-- kpisync store: tickets a large facts refresh has taken from changed_tickets (core/facts.py).
-- Such a refresh commits its tickets part by part on two cores; the marks of the parts not yet
-- committed live here, so a kill leaves them for the next refresh, while a ticket that changes
-- again meanwhile is marked anew in changed_tickets (its row there is gone) and never missed.
CREATE TABLE facts_claimed (
    source TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    PRIMARY KEY (source, ticket_id)
) WITHOUT ROWID;
