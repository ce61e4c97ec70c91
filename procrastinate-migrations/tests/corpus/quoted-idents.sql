SELECT "a;b" FROM "t""x";
-- trailing comment without newline