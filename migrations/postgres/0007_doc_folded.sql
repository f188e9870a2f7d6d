-- The document with every caseExact=false string folded by the server (Rust's to_lowercase), so
-- case-insensitive filters and sort keys compare with one rule on both databases instead of the
-- locale-dependent lower() (RFC 7643 §2.2). Written with every insert and update; rows older
-- than this column are filled at start-up by the server (`refold` in src/store/postgres.rs
-- and sqlite.rs): SQL cannot fold the way Rust does.
alter table users add column doc_folded jsonb;
alter table groups add column doc_folded jsonb;
