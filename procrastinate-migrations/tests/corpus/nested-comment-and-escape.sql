/* outer /* inner */ still comment; */ SELECT 1;
SELECT E'it\'s; fine';
