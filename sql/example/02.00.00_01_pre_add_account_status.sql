-- pre: safe to apply while 1.x is still running (new enum and nullable column).
CREATE TYPE account_status AS ENUM ('active', 'suspended');

ALTER TABLE accounts ADD COLUMN status account_status;

CREATE FUNCTION account_status_default() RETURNS trigger AS $$
BEGIN
    IF NEW.status IS NULL THEN
        NEW.status := 'active';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER account_status_default BEFORE INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION account_status_default();
