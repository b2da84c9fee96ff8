-- What the reports read of an incident's step records, kept on the incident row by the step
-- insert (src/reports, NOTE_STEP), in the same transaction, so that a report over incidents
-- filtered by agent, and the automation report, read one row per incident instead of joining
-- the step records:
--   agents             every actor of a step record, once, each between commas
--                      (',alice,bob,'), with '%' written '%25' and ',' written '%2C' so that no
--                      name contains the separator: the agent filter is "assigned to them, or
--                      their name in agents";
--   answers_automated  step records answered by a check,
--   answers_agent      by an agent,
--   answers_assumed    assumed (the runbook's default).
ALTER TABLE incidents ADD COLUMN agents TEXT NOT NULL DEFAULT ',';
ALTER TABLE incidents ADD COLUMN answers_automated BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN answers_agent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN answers_assumed BIGINT NOT NULL DEFAULT 0;
UPDATE incidents SET agents = a.agents, answers_automated = a.automated,
    answers_agent = a.agent, answers_assumed = a.assumed
FROM (SELECT incident_id,
             ',' || string_agg(DISTINCT replace(replace(actor, '%', '%25'), ',', '%2C'), ',') || ','
             AS agents,
             COUNT(*) FILTER (WHERE source = 'automated') AS automated,
             COUNT(*) FILTER (WHERE source = 'agent') AS agent,
             COUNT(*) FILTER (WHERE source = 'assumed') AS assumed
      FROM step_records GROUP BY incident_id) a
WHERE a.incident_id = incidents.id;
