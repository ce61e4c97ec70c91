-- An example set written the way Procrastinate writes its own: one file per change,
-- named {release}_{serial}_{pre|post}_{description}.sql, unqualified names (the schema comes
-- from search_path).
CREATE TABLE accounts (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
