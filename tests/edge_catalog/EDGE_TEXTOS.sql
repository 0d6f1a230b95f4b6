-- @title Texts that need quoting, and some that must not be quoted
SELECT id, valor, length(valor) AS tamanho FROM textos ORDER BY id;
