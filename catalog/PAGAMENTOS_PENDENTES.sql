-- @title Pagamentos pendentes
-- @description Todas as transações com status PENDENTE, com funcionário e departamento, em ordem de data.
-- @column id integer
-- @column data date
-- @column valor decimal
SELECT
    t.id AS id,
    f.nome AS funcionario,
    d.nome AS departamento,
    t.data AS data,
    t.categoria AS categoria,
    t.descricao AS descricao,
    printf('%d.%02d', t.valor_centavos / 100, t.valor_centavos % 100) AS valor
FROM transacoes AS t
JOIN funcionarios AS f ON f.id = t.funcionario_id
JOIN departamentos AS d ON d.id = f.departamento_id
WHERE t.status = 'PENDENTE'
ORDER BY t.data, t.id;
