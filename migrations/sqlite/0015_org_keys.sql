-- Every key of an organization's tables includes the organization, as on Postgres (where the
-- tables can then be distributed by organization). SQLite cannot change a primary key in
-- place: each table is rebuilt and renamed. The children are dropped before their parents,
-- so dropping a parent cascades to nothing; renaming a table rewrites the foreign keys that
-- name it.

create table users_next (
    id text not null,
    org_id text not null references organizations (id) on delete cascade,
    user_name text not null,
    user_name_folded text not null,
    external_id text,
    active integer not null default 1,
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

create table groups_next (
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
insert into groups_next (id, org_id, display_name, display_name_folded, external_id, doc,
    created_at, modified_at, version, doc_folded)
select id, org_id, display_name, display_name_folded, external_id, doc, created_at,
    modified_at, version, doc_folded
from groups;

create table group_members_next (
    group_id text not null,
    user_id text not null,
    created_at integer not null,
    org_id text not null,
    primary key (org_id, group_id, user_id),
    foreign key (org_id, group_id) references groups_next (org_id, id) on delete cascade,
    foreign key (org_id, user_id) references users_next (org_id, id) on delete cascade
);
insert into group_members_next (org_id, group_id, user_id, created_at)
select g.org_id, m.group_id, m.user_id, m.created_at
from group_members m join groups g on g.id = m.group_id;

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
drop table groups;
alter table users_next rename to users;
alter table groups_next rename to groups;
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

create unique index groups_org_display_name on groups (org_id, display_name_folded);
create index groups_org_external_id on groups (org_id, external_id);
create index groups_org_created on groups (org_id, created_at, id);

create index group_members_user on group_members (org_id, user_id);

create index user_emails_lookup on user_emails (org_id, value_folded);
create index user_emails_user on user_emails (org_id, user_id);
