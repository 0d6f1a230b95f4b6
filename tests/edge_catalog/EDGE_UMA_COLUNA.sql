-- @title One column: an empty value (NULL or '') alone on a row is written ""
SELECT valor FROM textos ORDER BY id;
