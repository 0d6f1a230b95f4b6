-- @title Two statements in one file: refused
SELECT 1 AS a; SELECT 2 AS b;
