-- As Postgres's 0019: a member's `display` in a group is the user's displayName, a column of
-- its own (SQLite's documents are already text). Computed when read, as before.
alter table users add column display_name text
    generated always as (json_extract(doc, '$.displayName')) virtual;
