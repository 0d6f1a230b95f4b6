-- @title Parâmetros entre casts, literais e comentários
-- @sources postgresql
-- @param texto text required "Texto"
-- @param numero text required "Número (aqui real: um parâmetro texto liga o valor como veio)"
-- @param inteiro integer required "Inteiro"
-- @param nulo text optional "Nulo"
-- @param data date default=2025-02-28 "Data"
-- @params {"texto": "a'b:c $1 %s", "numero": 2.5, "inteiro": 9007199254740991, "nulo": null}
SELECT
    :texto AS texto,
    :texto::text || ':nao_e_parametro' AS literal,
    CAST(:numero AS float8) * 2 AS dobro,
    :inteiro + 1 AS seguinte,
    :nulo::text IS NULL AS nulo_e_nulo,
    (:data::date + 1)::text AS dia_seguinte,
    $$ :tambem_nao $$ AS dolar,
    $tag$ :nem $ este $tag$ AS dolar_com_tag,
    E'\':nem_este' AS e_string,
    ":texto" AS "identificador:x", /* :comentario /* aninhado :x */ :ainda_comentario */
    '%' || :texto AS porcento -- :linha
FROM (SELECT 1 AS ":texto") AS t
