-- PostgreSQL's SQL of ../PAGAMENTOS_PENDENTES.sql (whose header lines declare the report).
SELECT
    t.id AS id,
    f.nome AS funcionario,
    d.nome AS departamento,
    t.data AS data,
    t.categoria AS categoria,
    t.descricao AS descricao,
    (t.valor_centavos / 100.0)::numeric(20, 2) AS valor
FROM transacoes AS t
JOIN funcionarios AS f ON f.id = t.funcionario_id
JOIN departamentos AS d ON d.id = f.departamento_id
WHERE t.status = 'PENDENTE'
ORDER BY t.data, t.id
