-- @title A query that fails while stepping, after rows were written
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 50000)
SELECT i, CASE WHEN i < 40000 THEN i ELSE json('não é json') END AS v FROM seq;
