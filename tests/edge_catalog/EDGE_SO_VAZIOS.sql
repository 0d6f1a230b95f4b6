-- @title Rows made only of empty fields, one column: each is written ""
SELECT NULL AS "" UNION ALL SELECT '' UNION ALL SELECT NULL;
