-- @title Parameter binding: text, integer, integral real (binds as INTEGER), real, null
-- @description The declared kinds matter to the API only; workers bind what the message holds.
-- @param texto text required "Texto com vírgula, aspas e quebra de linha"
-- @param inteiro integer required "O menor inteiro exato: -(2^53 - 1)"
-- @param inteiro_real integer required "5.0: liga como INTEGER"
-- @param real text required "0.1: liga como REAL"
-- @param grande text required "2^52 - 0.5: REAL de 17 algarismos"
-- @param nulo text required "null: liga como NULL"
-- @params {"texto": "a,\"b\"\né", "inteiro": -9007199254740991, "inteiro_real": 5.0, "real": 0.1, "grande": 4503599627370495.5, "nulo": null}
SELECT :texto AS texto, typeof(:texto) AS t1,
       :inteiro AS inteiro, typeof(:inteiro) AS t2,
       :inteiro_real AS inteiro_real, typeof(:inteiro_real) AS t3,
       :real AS real, typeof(:real) AS t4,
       :grande AS grande, typeof(:grande) AS t5,
       :nulo AS nulo, typeof(:nulo) AS t6;
