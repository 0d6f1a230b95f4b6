-- @title Resumo mensal por departamento e categoria
-- @description Para um ano: quantidade e total (pago, pendente e geral) por mês, departamento e categoria; canceladas ficam de fora.
-- @param ano integer required min=1900 max=2100 "Ano (ex.: 2025)"
-- @column quantidade integer
-- @column valor_pago decimal
-- @column valor_pendente decimal
-- @column valor decimal
SELECT
    substr(t.data, 1, 7) AS mes,
    d.nome AS departamento,
    t.categoria AS categoria,
    count(*) AS quantidade,
    printf('%d.%02d', sum(CASE WHEN t.status = 'PAGO' THEN t.valor_centavos ELSE 0 END) / 100,
                      sum(CASE WHEN t.status = 'PAGO' THEN t.valor_centavos ELSE 0 END) % 100) AS valor_pago,
    printf('%d.%02d', sum(CASE WHEN t.status = 'PENDENTE' THEN t.valor_centavos ELSE 0 END) / 100,
                      sum(CASE WHEN t.status = 'PENDENTE' THEN t.valor_centavos ELSE 0 END) % 100) AS valor_pendente,
    printf('%d.%02d', sum(t.valor_centavos) / 100, sum(t.valor_centavos) % 100) AS valor
FROM transacoes AS t
JOIN funcionarios AS f ON f.id = t.funcionario_id
JOIN departamentos AS d ON d.id = f.departamento_id
WHERE t.data >= printf('%04d-01-01', :ano) AND t.data < printf('%04d-01-01', :ano + 1)
  AND t.status <> 'CANCELADO'
GROUP BY mes, d.nome, t.categoria
ORDER BY mes, d.nome, t.categoria;
