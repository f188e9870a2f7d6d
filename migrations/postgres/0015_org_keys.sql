-- Every key of an organization's tables includes the organization, so the tables can be
-- distributed by organization (Citus: distribution column org_id) and every lookup names the
-- organization it belongs to. users and groups were keyed by id alone, group_members had no
-- organization at all, and user_emails pointed at users by id alone.
--
-- Rolling upgrade: processes of the previous release keep running until they are replaced.
-- They insert members without org_id, so a trigger fills it in from the group (it fires only
-- when org_id is missing); their `on conflict do nothing` has no target and accepts the new
-- primary key. The statements below lock each table while its new key is built (about a
-- second per million rows): writers of the previous release wait, none fails.

alter table group_members add column org_id uuid;
update group_members m set org_id = g.org_id from groups g where g.id = m.group_id;

create function group_members_org() returns trigger language plpgsql as $$
begin
    new.org_id := (select org_id from groups where id = new.group_id);
    return new;
end
$$;
create trigger group_members_org before insert on group_members
    for each row when (new.org_id is null) execute function group_members_org();
alter table group_members alter column org_id set not null;

alter table group_members drop constraint group_members_group_id_fkey,
    drop constraint group_members_user_id_fkey;
alter table user_emails drop constraint user_emails_user_id_fkey;

alter table users drop constraint users_pkey, add primary key (org_id, id);
alter table groups drop constraint groups_pkey, add primary key (org_id, id);

alter table group_members drop constraint group_members_pkey,
    add primary key (org_id, group_id, user_id),
    add foreign key (org_id, group_id) references groups (org_id, id) on delete cascade,
    add foreign key (org_id, user_id) references users (org_id, id) on delete cascade;
drop index group_members_user;
create index group_members_user on group_members (org_id, user_id);

alter table user_emails
    add foreign key (org_id, user_id) references users (org_id, id) on delete cascade;
drop index user_emails_user;
create index user_emails_user on user_emails (org_id, user_id);
