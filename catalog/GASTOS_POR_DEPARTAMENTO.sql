-- @title Gastos por departamento
-- @description Todas as transações não canceladas dos funcionários de um departamento, em ordem de data.
-- @param departamento department required "Departamento (ex.: Engenharia de Software)"
-- @column id integer
-- @column data date
-- @column valor decimal
SELECT
    t.id AS id,
    t.data AS data,
    f.nome AS funcionario,
    f.cargo AS cargo,
    t.categoria AS categoria,
    t.descricao AS descricao,
    printf('%d.%02d', t.valor_centavos / 100, t.valor_centavos % 100) AS valor,
    t.status AS status
FROM departamentos AS d
JOIN funcionarios AS f ON f.departamento_id = d.id
JOIN transacoes AS t ON t.funcionario_id = f.id
WHERE d.nome = :departamento
  AND t.status <> 'CANCELADO'
ORDER BY t.data, t.id;
