-- Operating scimd over HTTP (the admin API): operators' keys, what each key last did, the
-- HMAC secrets keys are signed with, organizations being deleted, and the operators' own
-- audit trail.

-- Operators' keys for /admin/v1: not tied to any organization, refused by the SCIM endpoints.
create table admin_keys (
    id text primary key,
    name text,
    created_at integer not null,
    expires_at integer,
    revoked_at integer,
    -- The signing secret of the key's JWT (`kid`; 'initial' is SCIMD_JWT_SECRET).
    secret_id text not null default 'initial',
    last_used_at integer,
    last_used_addr text,
    last_used_agent text
);

-- Which secret signed a key, and its last use: recorded at most once a minute per key.
alter table api_keys add column secret_id text not null default 'initial';
alter table api_keys add column last_used_at integer;
alter table api_keys add column last_used_addr text;
alter table api_keys add column last_used_agent text;

-- Set when the organization is deleted: its keys are refused at once, and its data is
-- removed by a background job in batches, after which the row itself goes.
alter table organizations add column deleted_at integer;

-- The progress of each organization deletion; kept when the organization is gone.
create table org_deletions (
    org_id text primary key,
    slug text not null,
    requested_at integer not null,
    rows_removed integer not null default 0,
    finished_at integer
);

-- HMAC secrets that sign API keys, named by a JWT's `kid`. 'initial' is the configured
-- SCIMD_JWT_SECRET (or SQLite's generated one), whose value is not kept here: its row exists
-- only once it is retired. Rotated secrets are generated and kept here, so every process
-- sharing the database verifies with them.
create table signing_secrets (
    id text primary key,
    secret text,
    created_at integer not null,
    retired_at integer
);

-- What operators did (the admin API and the command line). Not an organization's data:
-- deleting an organization keeps the record of its deletion.
create table admin_actions (
    id text primary key,
    at integer not null,
    action text not null,
    org_slug text,
    target text,
    key_id text,
    key_name text,
    request_id text,
    client_addr text,
    user_agent text,
    detail text
);
create index admin_actions_at on admin_actions (at, id);
