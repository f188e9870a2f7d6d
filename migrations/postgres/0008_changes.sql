-- The change log: one entry per change of a user or group, written in the transaction of the
-- change itself (ARCHITECTURE.md, "The change log").
--
-- `position` is the id of the writing transaction (`pg_current_xact_id()`, 64 bits, never
-- wraps). A reader takes only entries below the oldest transaction still running
-- (`pg_snapshot_xmin`): every transaction below it has ended, so no entry can later commit
-- with a lower position than one already read, and no write waits on a shared counter.
create table changes (
    org_id uuid not null references organizations (id) on delete cascade,
    position bigint not null,
    at bigint not null,
    resource_type text not null,
    resource_id uuid not null,
    external_id text,
    -- create, put, patch or delete (the RFC 9967 event names).
    operation text not null,
    -- activated or deactivated, when `active` changed.
    activation text,
    -- Names of the attributes that changed (a JSON array); `password` by name only.
    attributes jsonb not null,
    -- The resource's `meta.version` after the change (for a delete: the version deleted).
    version bigint not null,
    key_id uuid,
    key_name text,
    request_id text,
    client_addr text,
    user_agent text,
    -- Memberships the change made or ended: counts and at most 1,000 ids each way.
    memberships jsonb,
    -- The request's data (RFC 9967 "full" events), without any password.
    data jsonb,
    primary key (org_id, position)
);
create index changes_org_resource on changes (org_id, resource_id, position);
-- Retention prunes by age across organizations.
create index changes_at on changes (at);

-- Write requests refused with a 4xx (except 401 and 429, which are counted per key in the
-- metrics): what the client sent is never stored, only what was refused and why.
create table rejected_writes (
    org_id uuid not null references organizations (id) on delete cascade,
    id uuid not null,
    at bigint not null,
    key_id uuid,
    key_name text,
    request_id text,
    client_addr text,
    user_agent text,
    method text not null,
    path text not null,
    status bigint not null,
    scim_type text,
    detail text,
    primary key (org_id, id)
);
create index rejected_writes_at on rejected_writes (at);
