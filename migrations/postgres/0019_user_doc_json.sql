-- A user's document stored as `json`, the text scimd writes, instead of `jsonb`: every read
-- of a user answers with the document's text, and turning `jsonb` back into text was about
-- half of Postgres's work for a first page of 100 users once their groups were on their rows
-- (BENCHMARKS.md). Nothing queries into `doc` by path on a hot path: filters and sorting
-- read `doc_folded`, which stays `jsonb`. Existing rows are converted to `jsonb`'s text.
--
-- A member's `display` in a group (RFC 7643 §4.2) is the user's displayName: a column of its
-- own, computed by Postgres at every write (`->>` on `json` parses the whole text, which
-- would halve the rate of reading a large group's members).
--
-- Both rewrite the table (under a lock that holds its reads and writes until this commits).
-- A process of the release before this one keeps serving: its prepared statements that
-- return `doc` fail once with "cached plan must not change result type", which it answers by
-- preparing them again (reads) or with a 503 the client retries (writes); it reads `json` as
-- it read `jsonb`, and its writes' `jsonb` parameters are assigned to `json`. Two of its
-- rare statements apply `jsonb` functions to `doc` and fail until it is replaced: deleting
-- a user-attribute definition, and the refold at a change of profile.
alter table users alter column doc type json using doc::json;
alter table users add column display_name text
    generated always as (doc ->> 'displayName') stored;
