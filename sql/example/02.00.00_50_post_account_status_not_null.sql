-- post: once 2.0 is deployed every writer sets a status, so the column can be required.
UPDATE accounts SET status = 'active' WHERE status IS NULL;
ALTER TABLE accounts ALTER COLUMN status SET NOT NULL;
