-- @title Integers and reals (Python repr), NULL among numbers, mixed types in one column
SELECT id, valor, typeof(valor) AS tipo FROM numeros ORDER BY id;
