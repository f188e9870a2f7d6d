-- Tenants: every other row belongs to exactly one organization.
create table organizations (
    id uuid primary key,
    slug text not null unique,
    created_at bigint not null
);

-- API keys are JWTs; only their id lives here, so a key can be listed and revoked.
create table api_keys (
    id uuid primary key,
    org_id uuid not null references organizations (id) on delete cascade,
    name text,
    kind text not null check (kind in ('organization', 'personal')),
    created_at bigint not null,
    expires_at bigint,
    revoked_at bigint
);
create index api_keys_org on api_keys (org_id);

-- Attribute keys an organization allows under urn:omni:params:1.0:UserAttribute.
create table user_attribute_definitions (
    org_id uuid not null references organizations (id) on delete cascade,
    key text not null,
    created_at bigint not null,
    primary key (org_id, key)
);

-- A user is its SCIM document (doc) plus the columns that must be indexed or constrained.
-- user_name_folded is userName lower-cased by the server: the unique index makes the
-- database itself refuse a second userName differing only in case (RFC 7643 §4.1.1).
create table users (
    id uuid primary key,
    org_id uuid not null references organizations (id) on delete cascade,
    user_name text not null,
    user_name_folded text not null,
    external_id text,
    active boolean not null default true,
    doc jsonb not null,
    password_hash text,
    created_at bigint not null,
    modified_at bigint not null,
    version bigint not null default 1
);
create unique index users_org_user_name on users (org_id, user_name_folded);
create index users_org_external_id on users (org_id, external_id);
create index users_org_created on users (org_id, created_at, id);

-- Process-wide settings, e.g. a generated JWT signing secret.
create table settings (
    name text primary key,
    value text not null
);

-- GCRA state per rate-limit bucket ("theoretical arrival time", ms). Unlogged: losing it in a
-- crash only forgives a minute of requests, and it is written on every request.
create unlogged table rate_limits (
    bucket text primary key,
    tat bigint not null
);
