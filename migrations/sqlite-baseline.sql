-- The schema and rows that migrations/sqlite/ leave in an empty SQLite file, applied in
-- one transaction to a new file (src/store/sqlite_baseline.rs). Written by the test
-- the_baseline_is_what_the_migrations_build (SCIMD_WRITE_BASELINE=1); never edited by hand.
-- through migration 20
CREATE TABLE admin_actions (
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
CREATE TABLE admin_keys (
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
CREATE TABLE api_keys (
    id text primary key,
    org_id text not null references organizations (id) on delete cascade,
    name text,
    kind text not null check (kind in ('organization', 'personal')),
    created_at integer not null,
    expires_at integer,
    revoked_at integer
, secret_id text not null default 'initial', last_used_at integer, last_used_addr text, last_used_agent text);
CREATE TABLE change_positions (
    last integer not null
);
CREATE TABLE "changes" (
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
CREATE TABLE console_sessions (
    id text primary key,
    admin_key_id text not null,
    csrf text not null,
    created_at integer not null,
    expires_at integer not null
);
CREATE TABLE event_signing_keys (
    kid text primary key,
    -- PKCS#8 DER of the P-256 private key, base64.
    private_key text not null,
    created_at integer not null,
    retired_at integer
);
CREATE TABLE event_streams (
    org_id text not null references organizations (id) on delete cascade,
    id text not null,
    -- push or poll.
    kind text not null,
    -- Push: where SETs are POSTed.
    endpoint text,
    -- The events delivered (a JSON array of create, put, patch, delete, activate,
    -- deactivate).
    events text not null,
    -- Full events carry the request's data; notice events the changed attribute names.
    full_data integer not null,
    -- Push: the Authorization header value sent with every SET (shown once, never listed).
    auth_header text,
    -- Poll: SHA-256 of the stream's own bearer token.
    poll_token_hash text,
    -- The last change-log position acknowledged: delivery resumes after it.
    position integer not null,
    -- Poll: positions after `position` acknowledged out of order (a JSON array).
    acked_ahead text,
    -- active, failing or disabled.
    state text not null,
    failing_since integer,
    last_error text,
    -- When the receiver last acknowledged anything (ms); a stream silent for
    -- SCIMD_STREAM_MAX_LAG_DAYS is disabled.
    last_ack_at integer not null,
    delivered integer not null,
    created_at integer not null,
    -- The process delivering a push stream, and until when its lease holds.
    lease_owner text,
    lease_until integer,
    primary key (org_id, id)
);
CREATE TABLE "group_members" (
    group_id text not null,
    user_id text not null,
    created_at integer not null,
    org_id text not null,
    primary key (org_id, group_id, user_id),
    foreign key (org_id, group_id) references groups (org_id, id) on delete cascade,
    foreign key (org_id, user_id) references "users" (org_id, id) on delete cascade
);
CREATE TABLE "groups" (
    id text not null,
    org_id text not null references organizations (id) on delete cascade,
    display_name text not null,
    -- displayName lower-cased by the server: unique per org, case-insensitively.
    display_name_folded text not null,
    external_id text,
    doc text not null,
    created_at integer not null,
    modified_at integer not null,
    version integer not null default 1,
    doc_folded text,
    primary key (org_id, id)
);
CREATE TABLE org_activity (
    org_id text not null,
    -- Hours since the Unix epoch.
    hour integer not null,
    kind text not null,
    label text not null,
    count integer not null,
    primary key (org_id, hour, kind, label)
);
CREATE TABLE org_deletions (
    org_id text primary key,
    slug text not null,
    requested_at integer not null,
    rows_removed integer not null default 0,
    finished_at integer
);
CREATE TABLE organizations (
    id text primary key,
    slug text not null unique,
    created_at integer not null
, deleted_at integer);
CREATE TABLE "rejected_writes" (
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
CREATE TABLE settings (
    name text primary key,
    value text not null
);
CREATE TABLE signing_secrets (
    id text primary key,
    secret text,
    created_at integer not null,
    retired_at integer
);
CREATE TABLE user_attribute_definitions (
    org_id text not null references organizations (id) on delete cascade,
    key text not null,
    created_at integer not null,
    primary key (org_id, key)
);
CREATE TABLE user_counts (
    org_id text primary key references organizations (id) on delete cascade,
    users integer not null
);
CREATE TABLE "user_emails" (
    user_id text not null,
    org_id text not null,
    value_folded text not null,
    foreign key (org_id, user_id) references "users" (org_id, id) on delete cascade
);
CREATE TABLE "users" (
    id text not null,
    org_id text not null references organizations (id) on delete cascade,
    user_name text not null,
    user_name_folded text not null,
    external_id text,
    active integer default 1,
    doc text not null,
    password_hash text,
    created_at integer not null,
    modified_at integer not null,
    version integer not null default 1,
    doc_folded text, member_of text not null default '[]', display_name text
    generated always as (json_extract(doc, '$.displayName')) virtual,
    primary key (org_id, id)
);
CREATE INDEX admin_actions_at on admin_actions (at, id);
CREATE INDEX api_keys_org on api_keys (org_id);
CREATE INDEX changes_at on changes (at);
CREATE INDEX changes_org_operation on changes (org_id, operation, position);
CREATE INDEX changes_org_resource on changes (org_id, resource_id, position);
CREATE INDEX console_sessions_expires on console_sessions (expires_at);
CREATE INDEX event_streams_id on event_streams (id);
CREATE INDEX group_members_order on group_members (org_id, group_id, created_at, user_id);
CREATE INDEX group_members_user on group_members (org_id, user_id, group_id);
CREATE INDEX groups_org_created on groups (org_id, created_at, id);
CREATE UNIQUE INDEX groups_org_display_name on groups (org_id, display_name_folded);
CREATE INDEX groups_org_external_id on groups (org_id, external_id);
CREATE INDEX rejected_writes_at on rejected_writes (at);
CREATE INDEX user_emails_lookup on user_emails (org_id, value_folded);
CREATE INDEX user_emails_user on user_emails (org_id, user_id);
CREATE INDEX users_inactive on users (org_id) where not active;
CREATE INDEX users_org_created on users (org_id, created_at, id);
CREATE INDEX users_org_external_id on users (org_id, external_id);
CREATE UNIQUE INDEX users_org_user_name on users (org_id, user_name_folded);
CREATE TRIGGER group_members_added after insert on group_members
begin
    update users set member_of = (
        select coalesce(json_group_array(json_array(g.id, g.display_name)), '[]')
        from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
        where m.org_id = users.org_id and m.user_id = users.id)
    where org_id = new.org_id and id = new.user_id;
end;
CREATE TRIGGER group_members_removed after delete on group_members
begin
    update users set member_of = (
        select coalesce(json_group_array(json_array(g.id, g.display_name)), '[]')
        from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
        where m.org_id = users.org_id and m.user_id = users.id)
    where org_id = old.org_id and id = old.user_id;
end;
CREATE TRIGGER groups_renamed after update of display_name on groups
when old.display_name is not new.display_name
begin
    update users set member_of = (
        select coalesce(json_group_array(json_array(g.id, g.display_name)), '[]')
        from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
        where m.org_id = users.org_id and m.user_id = users.id)
    where org_id = new.org_id
      and id in (select user_id from group_members
                 where org_id = new.org_id and group_id = new.id);
end;
CREATE TRIGGER users_count_delete after delete on users
begin
    update user_counts set users = users - 1 where org_id = old.org_id;
end;
CREATE TRIGGER users_count_insert after insert on users
begin
    insert into user_counts (org_id, users) values (new.org_id, 1)
    on conflict (org_id) do update set users = users + 1;
end;
insert into "change_positions" values (0);
