-- Operating scimd over HTTP (the admin API): operators' keys, what each key last did, the
-- HMAC secrets keys are signed with, organizations being deleted, and the operators' own
-- audit trail.

-- Operators' keys for /admin/v1: not tied to any organization, refused by the SCIM endpoints.
create table admin_keys (
    id uuid primary key,
    name text,
    created_at bigint not null,
    expires_at bigint,
    revoked_at bigint,
    -- The signing secret of the key's JWT (`kid`; 'initial' is SCIMD_JWT_SECRET).
    secret_id text not null default 'initial',
    last_used_at bigint,
    last_used_addr text,
    last_used_agent text
);

-- Which secret signed a key, and its last use: recorded at most once a minute per key.
alter table api_keys add column secret_id text not null default 'initial';
alter table api_keys add column last_used_at bigint;
alter table api_keys add column last_used_addr text;
alter table api_keys add column last_used_agent text;

-- Set when the organization is deleted: its keys are refused at once, and its data is
-- removed by a background job in batches, after which the row itself goes.
alter table organizations add column deleted_at bigint;

-- The progress of each organization deletion; kept when the organization is gone.
create table org_deletions (
    org_id uuid primary key,
    slug text not null,
    requested_at bigint not null,
    rows_removed bigint not null default 0,
    finished_at bigint
);

-- HMAC secrets that sign API keys, named by a JWT's `kid`. 'initial' is the configured
-- SCIMD_JWT_SECRET (or SQLite's generated one), whose value is not kept here: its row exists
-- only once it is retired. Rotated secrets are generated and kept here, so every process
-- sharing the database verifies with them.
create table signing_secrets (
    id text primary key,
    secret text,
    created_at bigint not null,
    retired_at bigint
);

-- What operators did (the admin API and the command line). Not an organization's data:
-- deleting an organization keeps the record of its deletion.
create table admin_actions (
    id uuid primary key,
    at bigint not null,
    action text not null,
    org_slug text,
    target text,
    key_id uuid,
    key_name text,
    request_id text,
    client_addr text,
    user_agent text,
    detail jsonb
);
create index admin_actions_at on admin_actions (at, id);
