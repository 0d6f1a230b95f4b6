-- @title Reads a table of the test's database, so that database faults show up
SELECT * FROM t;
