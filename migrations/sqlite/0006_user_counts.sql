-- The number of users of each organization, kept by triggers in the same transaction as the
-- insert or delete, so an unfiltered list's totalResults (RFC 7644 §3.4.2) is one row read
-- instead of counting every user.
create table user_counts (
    org_id text primary key references organizations (id) on delete cascade,
    users integer not null
);

insert into user_counts (org_id, users)
select org_id, count(*) from users group by org_id;

create trigger users_count_insert after insert on users
begin
    insert into user_counts (org_id, users) values (new.org_id, 1)
    on conflict (org_id) do update set users = users + 1;
end;

create trigger users_count_delete after delete on users
begin
    update user_counts set users = users - 1 where org_id = old.org_id;
end;
