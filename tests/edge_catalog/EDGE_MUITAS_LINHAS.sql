-- @title Many rows: several buffer flushes and progress updates
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
SELECT i AS numero, i * 0.5 AS metade, printf('linha %d, "%d"', i, i) AS texto FROM n;
