-- Groups (RFC 7643 §4.2). Like users, a group is its SCIM document plus indexed columns;
-- members live in their own table so adding or removing one member touches one row.
create table groups (
    id uuid primary key,
    org_id uuid not null references organizations (id) on delete cascade,
    display_name text not null,
    -- displayName lower-cased by the server: unique per org, case-insensitively.
    display_name_folded text not null,
    external_id text,
    doc jsonb not null,
    created_at bigint not null,
    modified_at bigint not null,
    version bigint not null default 1
);
create unique index groups_org_display_name on groups (org_id, display_name_folded);
create index groups_org_external_id on groups (org_id, external_id);
create index groups_org_created on groups (org_id, created_at, id);

create table group_members (
    group_id uuid not null references groups (id) on delete cascade,
    user_id uuid not null references users (id) on delete cascade,
    created_at bigint not null,
    primary key (group_id, user_id)
);
-- user.groups and "delete a user" look members up by user.
create index group_members_user on group_members (user_id);
