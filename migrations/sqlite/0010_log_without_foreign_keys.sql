-- The change log and the rejected writes lose their foreign key to `organizations`, as on
-- Postgres (where checking it on every insert cost throughput; see the Postgres migration):
-- an organization's log entries are removed with its data by the code that removes an
-- organization, not by a cascade. SQLite cannot drop a constraint: each table is rebuilt.
create table changes_next (
    org_id text not null,
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
insert into changes_next select * from changes;
drop table changes;
alter table changes_next rename to changes;
create index changes_org_resource on changes (org_id, resource_id, position);
create index changes_at on changes (at);

create table rejected_writes_next (
    org_id text not null,
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
insert into rejected_writes_next select * from rejected_writes;
drop table rejected_writes;
alter table rejected_writes_next rename to rejected_writes;
create index rejected_writes_at on rejected_writes (at);
