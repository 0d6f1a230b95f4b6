-- @title Fields larger than the C worker's 1 MiB buffer, quoted and not
SELECT replace(hex(zeroblob(700000)), '00', 'a,"') AS com_aspas,
       replace(hex(zeroblob(1200000)), '00', 'x') AS sem_aspas;
