-- The support lead's reports (see src/reports.rs): what they aggregate is kept up to date by
-- every change of an incident, in the same transaction, so a report reads one row per incident.
--   closed_at            when the incident was closed (NULL while it is not closed);
--   phase_at             when its current (level, status) began (NULL: at created_at);
--   l1_ms, l2_ms, l3_ms  time spent open or escalated at each level, up to phase_at;
--   waiting_ms           time spent waiting for the user, up to phase_at.
-- Incidents from before this migration get closed_at = updated_at when closed and no time.
ALTER TABLE incidents ADD COLUMN closed_at BIGINT;
ALTER TABLE incidents ADD COLUMN phase_at BIGINT;
ALTER TABLE incidents ADD COLUMN l1_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN l2_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN l3_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN waiting_ms BIGINT NOT NULL DEFAULT 0;
UPDATE incidents SET closed_at = updated_at WHERE status = 'closed';
UPDATE incidents SET phase_at = updated_at;
-- The step whose answer led to an escalation (the incident's last answered step then).
ALTER TABLE escalations ADD COLUMN after_step TEXT;
UPDATE escalations SET after_step = (
    SELECT s.step FROM step_records s
    WHERE s.incident_id = escalations.incident_id AND s.at <= escalations.at
    ORDER BY s.id DESC LIMIT 1);
CREATE INDEX incidents_created ON incidents (created_at);
CREATE INDEX step_records_actor ON step_records (actor, incident_id);
-- The `lead` role (reports).
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('l1', 'l2', 'lead', 'admin'));
-- An agent's answer that replaced an automated answer to the same step, different from it:
-- the id of that automated record (the reports' "overridden proposals").
ALTER TABLE step_records ADD COLUMN overrides BIGINT;
UPDATE step_records SET overrides = (
    SELECT CASE WHEN p.source = 'automated' AND p.answer <> step_records.answer THEN p.id END
    FROM step_records p
    WHERE p.incident_id = step_records.incident_id AND p.step = step_records.step
      AND p.id < step_records.id
    ORDER BY p.id DESC LIMIT 1)
WHERE source = 'agent';
-- The earlier answer to the same step in the incident that a record replaces (NULL for the
-- first answer): the reports count the incidents that answered a step without DISTINCT.
ALTER TABLE step_records ADD COLUMN replaces BIGINT;
UPDATE step_records SET replaces = (
    SELECT p.id FROM step_records p
    WHERE p.incident_id = step_records.incident_id AND p.step = step_records.step
      AND p.id < step_records.id
    ORDER BY p.id DESC LIMIT 1);
-- The step reports (escalations per step, automation, overrides) read this index only.
CREATE INDEX step_records_report ON step_records (step, source) INCLUDE (replaces, overrides, incident_id, proposed, answer);
