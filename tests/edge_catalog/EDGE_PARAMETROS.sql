-- @title Parameter binding: text, integer, integral real (binds as INTEGER), real, null
-- @params {"texto": "a,\"b\"\né", "inteiro": -9007199254740992, "inteiro_real": 5.0, "real": 0.1, "grande": 1e300, "nulo": null}
SELECT :texto AS texto, typeof(:texto) AS t1,
       :inteiro AS inteiro, typeof(:inteiro) AS t2,
       :inteiro_real AS inteiro_real, typeof(:inteiro_real) AS t3,
       :real AS real, typeof(:real) AS t4,
       :grande AS grande, typeof(:grande) AS t5,
       :nulo AS nulo, typeof(:nulo) AS t6;
