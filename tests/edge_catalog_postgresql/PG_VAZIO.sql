-- @title Sem linhas
-- @sources postgresql
SELECT 1 AS um, 'dois' AS dois WHERE false
