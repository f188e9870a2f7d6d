-- A user's groups (RFC 7643 §4.1.2 `groups`) kept on its own row, as on Postgres (see its
-- 0018 for why): the JSON array of `[group id, group displayName]`, kept by triggers in the
-- transaction of every change of a membership or of a group's displayName.
alter table users add column member_of text not null default '[]';

create trigger group_members_added after insert on group_members
begin
    update users set member_of = (
        select coalesce(json_group_array(json_array(g.id, g.display_name)), '[]')
        from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
        where m.org_id = users.org_id and m.user_id = users.id)
    where org_id = new.org_id and id = new.user_id;
end;

create trigger group_members_removed after delete on group_members
begin
    update users set member_of = (
        select coalesce(json_group_array(json_array(g.id, g.display_name)), '[]')
        from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
        where m.org_id = users.org_id and m.user_id = users.id)
    where org_id = old.org_id and id = old.user_id;
end;

create trigger groups_renamed after update of display_name on groups
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

update users set member_of = (
    select coalesce(json_group_array(json_array(g.id, g.display_name)), '[]')
    from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
    where m.org_id = users.org_id and m.user_id = users.id)
where exists (select 1 from group_members m
              where m.org_id = users.org_id and m.user_id = users.id);
