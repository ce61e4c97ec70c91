-- cargo-procrastinate's tracking table: one row per applied (or stamped) migration.
-- `{table}` is replaced by the quoted, possibly schema-qualified name of the `version-table` setting.
-- revision and file_name together identify a migration; checksum is the SHA-256 of the file that ran.
CREATE TABLE IF NOT EXISTS {table} (
    revision    text        PRIMARY KEY,
    file_name   text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms bigint,
    applied_by  text        NOT NULL DEFAULT current_user,
    stamped     boolean     NOT NULL DEFAULT false
);
