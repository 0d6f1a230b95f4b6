-- PostgreSQL's SQL of ../TRANSACOES_POR_PERIODO.sql (whose header lines declare the report).
-- The dates arrive as text (the API checked YYYY-MM-DD) and are compared as dates.
SELECT
    t.id AS id,
    t.data AS data,
    f.nome AS funcionario,
    d.nome AS departamento,
    t.categoria AS categoria,
    t.descricao AS descricao,
    (t.valor_centavos / 100.0)::numeric(20, 2) AS valor,
    t.status AS status
FROM transacoes AS t
JOIN funcionarios AS f ON f.id = t.funcionario_id
JOIN departamentos AS d ON d.id = f.departamento_id
WHERE t.data BETWEEN CAST(:data_inicio AS date) AND CAST(:data_fim AS date)
ORDER BY t.data, t.id
