-- PostgreSQL's SQL of ../GASTOS_POR_DEPARTAMENTO.sql (whose header lines declare the report):
-- money as 1234.56 by numeric arithmetic, dates printed as YYYY-MM-DD by the date type.
SELECT
    t.id AS id,
    t.data AS data,
    f.nome AS funcionario,
    f.cargo AS cargo,
    t.categoria AS categoria,
    t.descricao AS descricao,
    (t.valor_centavos / 100.0)::numeric(20, 2) AS valor,
    t.status AS status
FROM departamentos AS d
JOIN funcionarios AS f ON f.departamento_id = d.id
JOIN transacoes AS t ON t.funcionario_id = f.id
WHERE d.nome = :departamento
  AND t.status <> 'CANCELADO'
ORDER BY t.data, t.id
