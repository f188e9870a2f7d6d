-- GCRA state per rate-limit bucket, in nanoseconds: whole milliseconds made every limit above
-- 60,000/min behave as 1,000/s. `granted` is how many tokens the last check took (a process
-- may lease several at once). Unlogged: losing it in a crash only forgives a minute of
-- requests, and it is written on every check.
--
-- `rate_limits` (milliseconds) stays for processes of the previous version during a rolling
-- upgrade; this version neither reads nor writes it. The two count separately meanwhile.
create unlogged table rate_limit_buckets (
    bucket text primary key,
    tat_ns bigint not null,
    granted bigint not null
);
