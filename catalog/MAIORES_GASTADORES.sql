-- @title Maiores gastadores do ano
-- @description Os funcionários com maior soma de transações não canceladas em um ano, do maior para o menor.
-- @param ano integer required min=1900 max=2100 "Ano (ex.: 2025)"
-- @param limite integer default=100 min=1 max=5000 "Quantos funcionários listar"
-- @column funcionario_id integer
-- @column quantidade integer
-- @column valor decimal
SELECT
    f.id AS funcionario_id,
    f.nome AS funcionario,
    f.cargo AS cargo,
    d.nome AS departamento,
    count(*) AS quantidade,
    printf('%d.%02d', sum(t.valor_centavos) / 100, sum(t.valor_centavos) % 100) AS valor
FROM transacoes AS t
JOIN funcionarios AS f ON f.id = t.funcionario_id
JOIN departamentos AS d ON d.id = f.departamento_id
WHERE t.data >= printf('%04d-01-01', :ano) AND t.data < printf('%04d-01-01', :ano + 1)
  AND t.status <> 'CANCELADO'
GROUP BY f.id
ORDER BY sum(t.valor_centavos) DESC, f.id
LIMIT :limite;
