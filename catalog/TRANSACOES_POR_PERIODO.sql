-- @title Transações por período
-- @description Todas as transações entre duas datas (inclusive), de qualquer status, com funcionário e departamento.
-- @param data_inicio date required "Data inicial (AAAA-MM-DD)"
-- @param data_fim date required "Data final (AAAA-MM-DD), inclusive"
-- @column id integer
-- @column data date
-- @column valor decimal
SELECT
    t.id AS id,
    t.data AS data,
    f.nome AS funcionario,
    d.nome AS departamento,
    t.categoria AS categoria,
    t.descricao AS descricao,
    printf('%d.%02d', t.valor_centavos / 100, t.valor_centavos % 100) AS valor,
    t.status AS status
FROM transacoes AS t
JOIN funcionarios AS f ON f.id = t.funcionario_id
JOIN departamentos AS d ON d.id = f.departamento_id
WHERE t.data BETWEEN :data_inicio AND :data_fim
ORDER BY t.data, t.id;
