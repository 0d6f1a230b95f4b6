-- @title float8 e float4
-- @sources postgresql
SELECT
    id,
    valor,
    CASE WHEN valor = 0 OR abs(valor) BETWEEN 1e-37 AND 1e38 THEN valor::float4 END AS curto
FROM reais
ORDER BY id
