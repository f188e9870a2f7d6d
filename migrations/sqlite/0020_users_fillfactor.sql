-- Postgres's 0020 leaves room on each page of users for updated rows (fillfactor). SQLite's
-- b-tree pages have no such setting: nothing changes here; the file keeps the two dialects'
-- migrations numbered alike.
select 1;
