-- @title An empty result: the header row alone
SELECT id, valor FROM textos WHERE id < 0;
