-- cargo-procrastinate's tracking table: one row per applied (or stamped) migration.
-- `{table}` is replaced by the quoted, possibly schema-qualified name of the `version-table` setting.
-- A migration is identified by its set and its file name; `revision` is the position it had in its
-- set when it was recorded, and `checksum` the SHA-256 of the file that ran. `set_name` is '' for
-- the one set of a plain `migrations = "dir"` (and for rows written before sets existed).
CREATE TABLE {table} (
    set_name    text        NOT NULL DEFAULT '',
    revision    text        NOT NULL,
    file_name   text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms bigint,
    applied_by  text        NOT NULL DEFAULT current_user,
    stamped     boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (set_name, file_name)
);
