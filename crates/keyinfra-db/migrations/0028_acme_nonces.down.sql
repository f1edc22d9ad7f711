-- ACME nonces were only ever spent here; dropping the table forgets which were, and every
-- outstanding nonce expires within its lifetime anyway.
DROP TABLE acme_spent_nonces;
