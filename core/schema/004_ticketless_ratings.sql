-- kpisync store: ratings without a ticket (NPS surveys, imported ratings) are re-read at every
-- facts refresh (core/facts.py `ticketless_ratings`). Without this index, clearing their old
-- fact rows scanned every rating fact of the source (40 ms per refresh on a 1M-ticket store).
CREATE INDEX rating_facts_ticketless ON rating_facts (source) WHERE tid IS NULL;
