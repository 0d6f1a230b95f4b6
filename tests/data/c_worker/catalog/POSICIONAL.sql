-- @title A positional parameter: refused, parameters are bound by name
SELECT ? AS a;
