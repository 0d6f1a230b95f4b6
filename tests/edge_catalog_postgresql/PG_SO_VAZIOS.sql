-- @title Uma coluna de vazios
-- @sources postgresql
SELECT v FROM (VALUES (1, ''), (2, NULL), (3, 'x')) AS t (n, v) ORDER BY n
