-- Postgres scales its change-log positions so that one transaction can write several entries
-- (a batch of Bulk creates). SQLite's positions come from `change_positions`, which already
-- hands out one per entry: nothing changes here; the migration keeps both dialects numbered
-- alike.
select 1;
