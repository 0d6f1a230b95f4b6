-- PostgreSQL's SQL of ../RESUMO_MENSAL.sql (whose header lines declare the report).
-- Text is ordered byte by byte (COLLATE "C"), as SQLite orders it, whatever the database's
-- own collation.
SELECT
    to_char(t.data, 'YYYY-MM') AS mes,
    d.nome AS departamento,
    t.categoria AS categoria,
    count(*) AS quantidade,
    (sum(CASE WHEN t.status = 'PAGO' THEN t.valor_centavos ELSE 0 END) / 100.0)::numeric(20, 2)
        AS valor_pago,
    (sum(CASE WHEN t.status = 'PENDENTE' THEN t.valor_centavos ELSE 0 END) / 100.0)::numeric(20, 2)
        AS valor_pendente,
    (sum(t.valor_centavos) / 100.0)::numeric(20, 2) AS valor
FROM transacoes AS t
JOIN funcionarios AS f ON f.id = t.funcionario_id
JOIN departamentos AS d ON d.id = f.departamento_id
WHERE t.data >= make_date(CAST(:ano AS integer), 1, 1)
  AND t.data < make_date(CAST(:ano AS integer) + 1, 1, 1)
  AND t.status <> 'CANCELADO'
GROUP BY 1, d.nome, t.categoria
ORDER BY 1, d.nome COLLATE "C", t.categoria COLLATE "C"
