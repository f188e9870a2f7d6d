-- A transaction may write several change-log entries (a batch of Bulk creates shares one
-- commit), so an entry's position becomes its transaction's id times 1024 plus its place
-- among that transaction's entries. The order of positions is unchanged: every stored
-- position, and every position a stream acknowledged, is scaled the same way. A poll
-- receiver that acknowledges, after this migration, a SET it fetched before it gets those
-- events again under new `jti`s (at-least-once delivery, as after a crash).
update changes set position = position * 1024;
update event_streams set position = position * 1024;
update event_streams
   set acked_ahead = (select coalesce(jsonb_agg((value::text::bigint) * 1024), '[]'::jsonb)
                        from jsonb_array_elements(acked_ahead))
 where acked_ahead is not null and jsonb_typeof(acked_ahead) = 'array';
