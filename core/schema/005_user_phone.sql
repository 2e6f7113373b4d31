-- kpisync store: phone numbers as a second key between ticket requesters and shop orders
-- (converted tickets). `phone_norm` / `customer_phone_norm` hold core/phone.py's normalised form:
-- digits with the country code, or "0" + the national number when it was written without one
-- (the default country is applied at query time). Users synced before this migration get their
-- phone at their next sync (a full refresh of the users stream reads them all again).
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN phone_norm TEXT;
CREATE INDEX users_phone ON users (phone_norm);
ALTER TABLE orders ADD COLUMN customer_phone_norm TEXT;
-- Orders already carried their phone: normalise them now (kpisync_phone_norm is registered by
-- core/store.py on its connection, the same function the order model uses).
UPDATE orders SET customer_phone_norm = kpisync_phone_norm(customer_phone) WHERE customer_phone IS NOT NULL;
