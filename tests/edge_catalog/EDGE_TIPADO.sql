-- @title Typed columns (@column): numbers as text, dates, text that looks like a formula
-- @column numero decimal
-- @column inteiro integer
-- @column dia date
-- @column texto text
WITH v(x) AS (
    VALUES ('12.50'), ('-3.00'), ('1234567.891'), ('0.5'), ('.5'), ('1.'), ('1e5'), ('12,50'),
           ('-'), (''), (NULL), ('2025-01-31'), ('2024-02-29'), ('2023-02-29'), ('1899-12-31'),
           ('1900-01-01'), ('2025-13-01'), ('2025-1-01'), ('=1+1'), ('-5'), ('+55 11'),
           ('@SUM(A1)'), (char(9) || 'tab'), (char(13) || 'cr'), ('1234567890123456'),
           ('123456789012345'), ('123456789012345.123456789012345'), (42), (-7), (2.5),
           (-0.0), (9007199254740993), (-9007199254740992), (9007199254740991), (1.5e15)
)
SELECT x AS numero, x AS inteiro, x AS dia, x AS texto, x AS livre FROM v;
