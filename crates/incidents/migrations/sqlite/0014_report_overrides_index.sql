-- The overrides report reads only the step records an automated check answered or proposed,
-- and those that override one (src/reports, ReportKind::Overrides: its WHERE is this index's
-- predicate, word for word, so that the planner can use it): a partial index holding what the
-- report reads of them (SQLite has no INCLUDE: they are key columns), so that its join to the
-- cohort reads this index instead of the whole table.
CREATE INDEX step_records_automated ON step_records
    (incident_id, step, source, overrides, proposed, answer)
    WHERE source = 'automated' OR proposed IS NOT NULL OR overrides IS NOT NULL;
