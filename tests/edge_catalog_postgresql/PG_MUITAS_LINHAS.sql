-- @title Muitas linhas, lidas uma a uma
-- @sources postgresql
SELECT i, md5(i::text) AS hash, i * 0.25::float8 AS quarto, i % 7 = 0 AS multiplo
FROM generate_series(1, 50000) AS i
