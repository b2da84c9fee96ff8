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
UPDATE incidents SET
    agents = ',' || (
        SELECT group_concat(a, ',') FROM (
            SELECT DISTINCT replace(replace(s.actor, '%', '%25'), ',', '%2C') AS a
            FROM step_records s WHERE s.incident_id = incidents.id)) || ',',
    answers_automated = (SELECT COUNT(*) FROM step_records s
                         WHERE s.incident_id = incidents.id AND s.source = 'automated'),
    answers_agent = (SELECT COUNT(*) FROM step_records s
                     WHERE s.incident_id = incidents.id AND s.source = 'agent'),
    answers_assumed = (SELECT COUNT(*) FROM step_records s
                       WHERE s.incident_id = incidents.id AND s.source = 'assumed')
WHERE id IN (SELECT incident_id FROM step_records);
