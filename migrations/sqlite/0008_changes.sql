-- The change log: one entry per change of a user or group, written in the transaction of the
-- change itself (ARCHITECTURE.md, "The change log").
--
-- `position` comes from `change_positions`, bumped in the writing transaction: SQLite has one
-- writer at a time, so positions are handed out in commit order and a reader can never find
-- a lower one committed after a higher one. The counter never goes back, even when retention
-- has pruned every entry.
create table changes (
    org_id text not null references organizations (id) on delete cascade,
    position integer not null,
    at integer not null,
    resource_type text not null,
    resource_id text not null,
    external_id text,
    -- create, put, patch or delete (the RFC 9967 event names).
    operation text not null,
    -- activated or deactivated, when `active` changed.
    activation text,
    -- Names of the attributes that changed (a JSON array); `password` by name only.
    attributes text not null,
    -- The resource's `meta.version` after the change (for a delete: the version deleted).
    version integer not null,
    key_id text,
    key_name text,
    request_id text,
    client_addr text,
    user_agent text,
    -- Memberships the change made or ended: counts and at most 1,000 ids each way.
    memberships text,
    -- The request's data (RFC 9967 "full" events), without any password.
    data text,
    primary key (org_id, position)
);
create index changes_org_resource on changes (org_id, resource_id, position);
-- Retention prunes by age across organizations.
create index changes_at on changes (at);

create table change_positions (
    last integer not null
);
insert into change_positions (last) values (0);

-- Write requests refused with a 4xx (except 401 and 429, which are counted per key in the
-- metrics): what the client sent is never stored, only what was refused and why.
create table rejected_writes (
    org_id text not null references organizations (id) on delete cascade,
    id text not null,
    at integer not null,
    key_id text,
    key_name text,
    request_id text,
    client_addr text,
    user_agent text,
    method text not null,
    path text not null,
    status integer not null,
    scim_type text,
    detail text,
    primary key (org_id, id)
);
create index rejected_writes_at on rejected_writes (at);
