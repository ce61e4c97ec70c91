-- A fingerprint of one schema's catalog, for comparing two databases: (kind, name, definition)
-- rows, sorted. Columns are listed by name, so column order does not count (a database built by
-- the migrations orders procrastinate_jobs' columns differently from schema.sql); enum values
-- keep their order. {schema} is the schema's name and {table} the tracking table's, left out
-- (both as quoted literals: only the simple-query protocol is used).
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = {schema}),
rels AS (
    SELECT c.oid, c.relname, c.relkind FROM pg_class c
    WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relname <> {table}
      AND NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                      WHERE i.indexrelid = c.oid AND t.relname = {table})
)
SELECT 'relation'::text AS kind, relname::text AS name, relkind::text AS definition FROM rels WHERE relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
UNION ALL
SELECT 'column', r.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM rels r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum
WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT 'index', r.relname, pg_get_indexdef(r.oid) FROM rels r WHERE r.relkind IN ('i', 'I')
UNION ALL
SELECT 'constraint', r.relname || '.' || con.conname, pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN rels r ON r.oid = con.conrelid
UNION ALL
SELECT 'trigger', r.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
UNION ALL
SELECT 'sequence', r.relname, format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement
FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
UNION ALL
SELECT 'view', r.relname, pg_get_viewdef(r.oid) FROM rels r WHERE r.relkind IN ('v', 'm')
UNION ALL
SELECT 'type', t.typname, t.typtype::text || coalesce(' ' || (
           SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '')
FROM pg_type t
WHERE t.typnamespace = (SELECT oid FROM ns)
  AND (t.typtype IN ('e', 'd')
       OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
UNION ALL
SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid) ELSE p.prokind::text END
FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns)
ORDER BY 1, 2, 3;
