-- @title :n generated rows, no table needed (memory and signal tests of the C worker)
-- @param n text required "Quantas linhas (texto: liga o número como veio, inteiro ou real)"
WITH RECURSIVE seq(i) AS (SELECT 1 WHERE :n > 0 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)
SELECT i AS numero, printf('linha %d, com "aspas"', i) AS texto, i * 0.25 AS quarto FROM seq;
