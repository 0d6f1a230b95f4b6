-- PostgreSQL's SQL of ../MAIORES_GASTADORES.sql (whose header lines declare the report).
-- Ties are broken by id, as in SQLite, so both databases list the same employees.
SELECT
    f.id AS funcionario_id,
    f.nome AS funcionario,
    f.cargo AS cargo,
    d.nome AS departamento,
    count(*) AS quantidade,
    (sum(t.valor_centavos) / 100.0)::numeric(20, 2) AS valor
FROM transacoes AS t
JOIN funcionarios AS f ON f.id = t.funcionario_id
JOIN departamentos AS d ON d.id = f.departamento_id
WHERE t.data >= make_date(CAST(:ano AS integer), 1, 1)
  AND t.data < make_date(CAST(:ano AS integer) + 1, 1, 1)
  AND t.status <> 'CANCELADO'
GROUP BY f.id, d.id
ORDER BY sum(t.valor_centavos) DESC, f.id
LIMIT :limite
