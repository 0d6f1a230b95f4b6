-- @title Tipos do PostgreSQL em texto
-- @sources postgresql
SELECT
    1::int2 AS pequeno, 9223372036854775807::int8 AS grande,
    12345678901234567890.123::numeric AS numerico, 1.50::numeric(10, 2) AS dinheiro,
    true AS verdadeiro, false AS falso,
    DATE '2025-01-31' AS data, TIMESTAMP '2025-01-31 12:34:56.789' AS momento,
    TIMESTAMPTZ '2025-01-31 12:34:56+03' AS com_fuso, INTERVAL '1 day 02:03:04' AS intervalo,
    '{"a": [1, "b, c"], "d": null}'::jsonb AS json, ARRAY[1, 2, 3] AS inteiros,
    ARRAY['a,b', NULL, 'c"d', ''] AS textos, ARRAY[0.1, 1e300, -0.0]::float8[] AS reais,
    '\x00ff'::bytea AS bytes, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS uuid,
    'NaN'::float8 AS nan, 'Infinity'::float8 AS infinito, '-Infinity'::float4 AS menos_infinito,
    '-0'::float8 AS menos_zero, 0.1::float4 AS float4, NULL::text AS nulo, '' AS vazio,
    'linha 1' || chr(10) || 'linha 2' AS quebra
