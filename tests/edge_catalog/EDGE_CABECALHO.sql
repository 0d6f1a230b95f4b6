-- @title Column names that need quoting, and a single empty one
SELECT 1 AS "a,b", 'x' AS "diz ""oi""", NULL AS "linha
quebrada", 2.5 AS "ação";
