-- `active` is null where the SCIM interoperability profile (SCIMD_PROFILE=interop) renders no
-- `active` because none is stored (RFC 7643 strict rendering); the reference profile keeps
-- writing 1 there, as before. SQLite cannot drop a NOT NULL in place: `users` is rebuilt, and
-- with it the two tables whose foreign keys name it (dropping `users` under them would
-- cascade into their rows), as in 0015.

create table users_next (
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
    doc_folded text,
    primary key (org_id, id)
);
insert into users_next (id, org_id, user_name, user_name_folded, external_id, active, doc,
    password_hash, created_at, modified_at, version, doc_folded)
select id, org_id, user_name, user_name_folded, external_id, active, doc, password_hash,
    created_at, modified_at, version, doc_folded
from users;

create table group_members_next (
    group_id text not null,
    user_id text not null,
    created_at integer not null,
    org_id text not null,
    primary key (org_id, group_id, user_id),
    foreign key (org_id, group_id) references groups (org_id, id) on delete cascade,
    foreign key (org_id, user_id) references users_next (org_id, id) on delete cascade
);
insert into group_members_next (org_id, group_id, user_id, created_at)
select org_id, group_id, user_id, created_at from group_members;

create table user_emails_next (
    user_id text not null,
    org_id text not null,
    value_folded text not null,
    foreign key (org_id, user_id) references users_next (org_id, id) on delete cascade
);
insert into user_emails_next (org_id, user_id, value_folded)
select org_id, user_id, value_folded from user_emails;

drop table group_members;
drop table user_emails;
drop table users;
alter table users_next rename to users;
alter table group_members_next rename to group_members;
alter table user_emails_next rename to user_emails;

create unique index users_org_user_name on users (org_id, user_name_folded);
create index users_org_external_id on users (org_id, external_id);
create index users_org_created on users (org_id, created_at, id);
create index users_inactive on users (org_id) where not active;
create trigger users_count_insert after insert on users
begin
    insert into user_counts (org_id, users) values (new.org_id, 1)
    on conflict (org_id) do update set users = users + 1;
end;
create trigger users_count_delete after delete on users
begin
    update user_counts set users = users - 1 where org_id = old.org_id;
end;

-- A user's groups: with `group_id` in it the index covers the lookup, which SQLite's planner
-- (without statistics) otherwise answered from the primary key's `org_id` prefix, reading every
-- membership of the organization for each user read.
create index group_members_user on group_members (org_id, user_id, group_id);

create index user_emails_lookup on user_emails (org_id, value_folded);
create index user_emails_user on user_emails (org_id, user_id);
-- A group's members in the order they were added, the first N read from the index alone.
create index group_members_order on group_members (org_id, group_id, created_at, user_id);
