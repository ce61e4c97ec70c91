-- One schema's catalog, as (kind, name, key, value) rows: one row with key '' per object, then one
-- per attribute it is compared by (null attributes have no row), and keys starting with '.' that
-- are not compared: '.parent' (the table of a column, constraint, index or trigger), '.position'
-- (a column's place in its table), '.ddl' (PostgreSQL's own statement for it) and '.target' (what
-- COMMENT ON and GRANT call the object of a comment, owner or privileges).
-- Read with search_path set to the schema alone, so that its own objects print unqualified and
-- other schemas' qualified. {schema} is the schema's name (a quoted literal: only the simple-query
-- protocol is used) and {tables} the tracking tables', left out (a text[] of literals);
-- {privileges} is true to read owners and privileges. Objects that belong to an extension are the extension's, not listed.
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = {schema}),
members AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'),
rels AS (
    SELECT c.oid, c.relname::text AS relname, c.relkind, c.relpersistence, c.reloptions, c.relispartition, c.relpartbound,
           c.relowner, c.relacl,
           CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'f' THEN 'table' WHEN 'v' THEN 'view'
                          WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index'
                          WHEN 'I' THEN 'index' END AS kind
    FROM pg_class c
    WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relname::text <> ALL ({tables})
      AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'i', 'I')
      AND NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                      WHERE i.indexrelid = c.oid AND t.relname::text = ANY ({tables}) AND t.relnamespace = c.relnamespace)
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_class'::regclass::oid AND m.objid = c.oid)
      -- An identity column's sequence is the column's.
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass::oid AND d.objid = c.oid AND d.deptype = 'i')
),
tables AS (SELECT * FROM rels WHERE relkind IN ('r', 'p', 'f')),
procs AS (
    SELECT p.*, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS ident
    FROM pg_proc p
    WHERE p.pronamespace = (SELECT oid FROM ns)
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_proc'::regclass::oid AND m.objid = p.oid)
),
types AS (
    SELECT t.* FROM pg_type t
    WHERE t.typnamespace = (SELECT oid FROM ns)
      AND (t.typtype IN ('e', 'd', 'r')
           OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_type'::regclass::oid AND m.objid = t.oid)
),
cons AS (
    SELECT con.*, r.relname AS tablename FROM pg_constraint con JOIN tables r ON r.oid = con.conrelid
),
trigs AS (
    SELECT t.*, r.relname AS tablename FROM pg_trigger t JOIN tables r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
),
-- Every object, with what `COMMENT ON`, `ALTER ... OWNER` and `GRANT` call it.
objects AS (
    SELECT o.kind, o.name, o.target, o.classoid, o.objoid, o.subid, o.owner, o.acl, o.listed FROM (
        SELECT kind, relname AS name, upper(kind) || ' ' || quote_ident(relname) AS target, 'pg_class'::regclass::oid AS classoid, oid AS objoid, 0 AS subid,
               relowner AS owner, relacl AS acl, true AS listed FROM rels
        UNION ALL
        -- A view's columns are its definition's, not objects of their own (but may have comments).
        SELECT 'column', r.relname || '.' || a.attname, 'COLUMN ' || quote_ident(r.relname) || '.' || quote_ident(a.attname),
               'pg_class'::regclass::oid, r.oid, a.attnum, NULL, a.attacl, r.relkind IN ('r', 'p', 'f')
        FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE r.relkind IN ('r', 'p', 'f', 'v', 'm')
        UNION ALL
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END, p.ident,
               CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' WHEN 'a' THEN 'AGGREGATE ' ELSE 'FUNCTION ' END
                 || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               'pg_proc'::regclass::oid, p.oid, 0, p.proowner, p.proacl, true FROM procs p
        UNION ALL
        SELECT 'type', t.typname, CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || quote_ident(t.typname),
               'pg_type'::regclass::oid, t.oid, 0, t.typowner, t.typacl, true FROM types t
        UNION ALL
        SELECT 'constraint', c.tablename || '.' || c.conname, 'CONSTRAINT ' || quote_ident(c.conname) || ' ON ' || quote_ident(c.tablename),
               'pg_constraint'::regclass::oid, c.oid, 0, NULL, NULL, true FROM cons c
        UNION ALL
        SELECT 'trigger', t.tablename || '.' || t.tgname, 'TRIGGER ' || quote_ident(t.tgname) || ' ON ' || quote_ident(t.tablename),
               'pg_trigger'::regclass::oid, t.oid, 0, NULL, NULL, true FROM trigs t
        UNION ALL
        SELECT 'extension', e.extname, 'EXTENSION ' || quote_ident(e.extname), 'pg_extension'::regclass::oid, e.oid, 0, NULL, NULL, true
        FROM pg_extension e WHERE e.extnamespace = (SELECT oid FROM ns)
        UNION ALL
        SELECT 'schema', n.nspname, 'SCHEMA ' || quote_ident(n.nspname), 'pg_namespace'::regclass::oid, n.oid, 0, n.nspowner, n.nspacl, false
        FROM pg_namespace n WHERE n.oid = (SELECT oid FROM ns)
    ) o
),
attrs(kind, name, key, value) AS (
    -- The schema itself is not an object here (every catalog has it); its comment, owner and
    -- privileges are.
    SELECT kind, name, '', '' FROM objects WHERE listed
    UNION ALL
    SELECT 'extension', e.extname, 'version', e.extversion FROM pg_extension e WHERE e.extnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'table', r.relname, kv.k, kv.v FROM tables r, LATERAL (VALUES
        ('partitioned by', CASE WHEN r.relkind = 'p' THEN pg_get_partkeydef(r.oid) END),
        ('foreign', CASE WHEN r.relkind = 'f' THEN 'true' END),
        ('unlogged', CASE WHEN r.relpersistence = 'u' THEN 'true' END),
        ('partition of', CASE WHEN r.relispartition THEN (SELECT quote_ident(p.relname) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = r.oid) END),
        ('bound', CASE WHEN r.relispartition THEN pg_get_expr(r.relpartbound, r.oid) END),
        ('options', array_to_string(r.reloptions, ', '))
    ) kv(k, v)
    UNION ALL
    SELECT 'column', r.relname || '.' || a.attname, kv.k, kv.v
    FROM tables r
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type ty ON ty.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum,
    LATERAL (VALUES
        ('.parent', r.relname),
        ('.position', a.attnum::text),
        ('type', format_type(a.atttypid, a.atttypmod)),
        ('not null', CASE WHEN a.attnotnull THEN 'true' END),
        ('default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END),
        ('generated', CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END),
        ('identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END),
        ('collation', CASE WHEN a.attcollation <> ty.typcollation
                           THEN (SELECT quote_ident(c.collname) FROM pg_collation c WHERE c.oid = a.attcollation) END)
    ) kv(k, v)
    UNION ALL
    SELECT 'constraint', c.tablename || '.' || c.conname, kv.k, kv.v FROM cons c, LATERAL (VALUES
        ('.parent', c.tablename),
        ('type', CASE c.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'foreign key'
                                WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger' END),
        ('definition', regexp_replace(pg_get_constraintdef(c.oid), ' NOT VALID$', '')),
        ('not valid', CASE WHEN NOT c.convalidated THEN 'true' END)
    ) kv(k, v)
    UNION ALL
    SELECT 'index', r.relname, kv.k, kv.v
    FROM rels r JOIN pg_index i ON i.indexrelid = r.oid JOIN pg_class t ON t.oid = i.indrelid,
    LATERAL (VALUES
        ('.parent', t.relname::text),
        ('.ddl', pg_get_indexdef(r.oid)),
        ('table', t.relname::text),
        ('unique', CASE WHEN i.indisunique THEN 'true' END),
        -- Method, keys, INCLUDE, NULLS NOT DISTINCT, WITH and WHERE, as PostgreSQL prints them.
        ('using', substring(pg_get_indexdef(r.oid) FROM ' USING (.*)$')),
        ('not valid', CASE WHEN NOT i.indisvalid THEN 'true' END),
        ('constraint', (SELECT con.conname::text FROM pg_constraint con WHERE con.conindid = r.oid AND con.conrelid = t.oid AND con.contype IN ('p', 'u', 'x')))
    ) kv(k, v)
    UNION ALL
    SELECT 'trigger', t.tablename || '.' || t.tgname, kv.k, kv.v FROM trigs t, LATERAL (VALUES
        ('.parent', t.tablename),
        ('definition', pg_get_triggerdef(t.oid, true)),
        ('enabled', CASE t.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END)
    ) kv(k, v)
    UNION ALL
    SELECT 'sequence', r.relname, kv.k, kv.v FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid, LATERAL (VALUES
        ('type', format_type(s.seqtypid, NULL)),
        ('start', s.seqstart::text),
        ('increment', s.seqincrement::text),
        ('min', s.seqmin::text),
        ('max', s.seqmax::text),
        ('cache', s.seqcache::text),
        ('cycle', CASE WHEN s.seqcycle THEN 'true' END),
        ('owned by', (SELECT quote_ident(t.relname) || '.' || quote_ident(a.attname)
                      FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                      JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                      WHERE d.classid = 'pg_class'::regclass::oid AND d.objid = r.oid AND d.deptype = 'a'
                        AND d.refclassid = 'pg_class'::regclass::oid))
    ) kv(k, v)
    UNION ALL
    SELECT r.kind, r.relname, kv.k, kv.v FROM rels r, LATERAL (VALUES
        ('definition', pg_get_viewdef(r.oid)),
        ('columns', (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                     FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped)),
        ('options', array_to_string(r.reloptions, ', '))
    ) kv(k, v) WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END, p.ident, kv.k, kv.v
    FROM procs p JOIN pg_language l ON l.oid = p.prolang, LATERAL (VALUES
        -- PostgreSQL's CREATE OR REPLACE, the routine's name unqualified as it is in the schema.
        ('.ddl', CASE WHEN p.prokind IN ('f', 'p', 'w') THEN
             regexp_replace(pg_get_functiondef(p.oid), '^(CREATE OR REPLACE (FUNCTION|PROCEDURE) )[^(]*\(',
                            '\1' || replace(quote_ident(p.proname), '\', '\\') || '(') END),
        ('returns', CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END),
        ('arguments', pg_get_function_arguments(p.oid)),
        ('language', l.lanname::text),
        ('window', CASE WHEN p.prokind = 'w' THEN 'true' END),
        ('volatility', CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' END),
        ('security definer', CASE WHEN p.prosecdef THEN 'true' END),
        ('strict', CASE WHEN p.proisstrict THEN 'true' END),
        ('leakproof', CASE WHEN p.proleakproof THEN 'true' END),
        ('parallel', CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' END),
        ('cost', p.procost::text),
        ('rows', CASE WHEN p.proretset THEN p.prorows::text END),
        ('settings', array_to_string(p.proconfig, ', ')),
        -- The body as written (a `BEGIN ATOMIC` body has none: its definition stands for it).
        ('body', CASE WHEN p.prosrc <> '' OR p.prokind = 'a' THEN p.prosrc
                      WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid) END),
        ('aggregate', CASE WHEN p.prokind = 'a' THEN
             (SELECT 'SFUNC = ' || g.aggtransfn::regproc::text || ', STYPE = ' || format_type(g.aggtranstype, NULL)
                     || coalesce(', FINALFUNC = ' || nullif(g.aggfinalfn, 0)::regproc::text, '')
                     || coalesce(', INITCOND = ' || quote_literal(g.agginitval), '')
              FROM pg_aggregate g WHERE g.aggfnoid = p.oid) END)
    ) kv(k, v)
    UNION ALL
    SELECT 'type', t.typname, kv.k, kv.v FROM types t, LATERAL (VALUES
        ('type', CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite' WHEN 'r' THEN 'range' END),
        ('labels', (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)),
        ('base', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END),
        ('not null', CASE WHEN t.typnotnull THEN 'true' END),
        ('default', t.typdefault),
        ('collation', CASE WHEN t.typtype = 'd' AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)
                           THEN (SELECT quote_ident(c.collname) FROM pg_collation c WHERE c.oid = t.typcollation) END),
        ('checks', (SELECT string_agg('CONSTRAINT ' || quote_ident(con.conname) || ' ' || pg_get_constraintdef(con.oid), ' ' ORDER BY con.conname)
                    FROM pg_constraint con WHERE con.contypid = t.oid)),
        ('attributes', CASE WHEN t.typtype = 'c' THEN
             (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END),
        ('subtype', (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg WHERE rg.rngtypid = t.oid))
    ) kv(k, v)
    UNION ALL
    SELECT 'comment', o.kind || ' ' || o.name, kv.k, kv.v
    FROM objects o JOIN pg_description ds ON ds.classoid = o.classoid AND ds.objoid = o.objoid AND ds.objsubid = o.subid,
    LATERAL (VALUES ('', ''), ('.target', o.target), ('text', ds.description)) kv(k, v)
    -- The schema's comment (`public` has one in every database) is not the set's.
    WHERE o.kind <> 'schema'
    UNION ALL
    SELECT 'owner', o.kind || ' ' || o.name, kv.k, kv.v
    FROM objects o, LATERAL (VALUES ('', ''), ('.target', o.target), ('role', pg_get_userbyid(o.owner)::text)) kv(k, v)
    -- An index is owned with its table.
    WHERE {privileges} AND o.owner IS NOT NULL AND o.kind <> 'index'
    UNION ALL
    SELECT 'privileges', o.kind || ' ' || o.name, kv.k, kv.v
    FROM objects o, LATERAL (VALUES ('', ''), ('.target', o.target), ('acl', array_to_string(o.acl, ', '))) kv(k, v)
    WHERE {privileges} AND o.acl IS NOT NULL
)
SELECT kind, name, key, value FROM attrs WHERE value IS NOT NULL
