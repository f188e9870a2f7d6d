-- On SQLite the rate-limit state lives in the server's memory (one process owns the file);
-- the millisecond table from 0001 was never used and goes.
drop table if exists rate_limits;
