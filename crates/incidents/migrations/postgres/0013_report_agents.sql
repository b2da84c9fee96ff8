-- The reports' agent filter (src/reports): an incident is worked by an agent when it is
-- assigned to them or they recorded one of its steps. `agents` keeps the second half on the
-- incident row, so the filter reads one row per incident instead of joining the step records:
-- every actor of a step record, once, each between commas (',alice,bob,'), with '%' written
-- '%25' and ',' written '%2C' so that no name can contain the separator. Kept by the step
-- insert (src/store/mod.rs, insert_step_record!), in the same transaction.
ALTER TABLE incidents ADD COLUMN agents TEXT NOT NULL DEFAULT ',';
UPDATE incidents SET agents = a.agents
FROM (SELECT incident_id,
             ',' || string_agg(DISTINCT replace(replace(actor, '%', '%25'), ',', '%2C'), ',') || ','
             AS agents
      FROM step_records GROUP BY incident_id) a
WHERE a.incident_id = incidents.id;
