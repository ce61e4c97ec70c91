\echo hi
SELECT 1;
