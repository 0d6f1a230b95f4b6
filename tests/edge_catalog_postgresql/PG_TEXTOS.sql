-- @title Textos difíceis
-- @sources postgresql
SELECT id, valor, length(valor) AS tamanho FROM textos ORDER BY id
