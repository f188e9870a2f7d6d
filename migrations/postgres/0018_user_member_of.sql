-- A user's groups (RFC 7643 §4.1.2 `groups`: the groups it is a direct member of) kept on
-- its own row, as the JSON array of `[group id, group displayName]` that reads used to build
-- with a subquery on every read: a read of a user is then one row, and a page of users needs
-- no second statement for their memberships (that statement cost Postgres about as much as
-- the first page of 100 users itself, BENCHMARKS.md). Reads put the pairs in name order;
-- the array's own order is none in particular.
--
-- Triggers keep it in the transaction of every change of a membership or of a group's
-- displayName, whichever statement makes it: a member change, a group's PUT or deletion, a
-- user's or an organization's deletion, or a process of the release before this one during
-- a rolling upgrade, which does not know the column.
alter table users add column member_of json not null default '[]';

-- The user of an added or removed membership, read again from `group_members`. Per row, not
-- per statement: most member changes name one user, and a statement-level trigger (its
-- transition table, a join from it) cost a member change about twice as much. A statement
-- that changes several memberships reaches their users in the order it writes them: the
-- store writes them in id order, so two such statements wait for each other rather than
-- deadlock on the users' rows.
create function users_member_of_follow() returns trigger language plpgsql as $$
declare
    member group_members;
begin
    if tg_op = 'INSERT' then
        member := new;
    else
        member := old;
    end if;
    update users u set member_of = (
        select coalesce(json_agg(json_build_array(g.id, g.display_name)), '[]')
        from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
        where m.org_id = member.org_id and m.user_id = member.user_id)
    where u.org_id = member.org_id and u.id = member.user_id;
    return null;
end
$$;

-- Creating the trigger locks out writes to group_members until this migration commits, so
-- the backfill below cannot miss a concurrent change.
create trigger group_members_member_of after insert or delete on group_members
    for each row execute function users_member_of_follow();

-- A renamed group's members, their rows locked in id order first (as above).
create function users_member_of_rename() returns trigger language plpgsql as $$
begin
    perform 1 from users u
    where u.org_id = new.org_id
      and u.id in (select m.user_id from group_members m
                   where m.org_id = new.org_id and m.group_id = new.id)
    order by u.id
    for no key update;
    update users u set member_of = (
        select coalesce(json_agg(json_build_array(g.id, g.display_name)), '[]')
        from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
        where m.org_id = u.org_id and m.user_id = u.id)
    where u.org_id = new.org_id
      and u.id in (select m.user_id from group_members m
                   where m.org_id = new.org_id and m.group_id = new.id);
    return null;
end
$$;

create trigger groups_renamed after update of display_name on groups
    for each row when (old.display_name is distinct from new.display_name)
    execute function users_member_of_rename();

update users u set member_of = s.groups
from (select m.org_id, m.user_id,
             json_agg(json_build_array(g.id, g.display_name)) as groups
      from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
      group by m.org_id, m.user_id) s
where u.org_id = s.org_id and u.id = s.user_id;
