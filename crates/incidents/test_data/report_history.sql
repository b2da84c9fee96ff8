-- A generated history for the reports' tests and bench/reports.sh: {N} incidents, one a minute
-- from {BASE} (unix ms), with their step records and escalations, written by bulk INSERTs the
-- same way on SQLite and PostgreSQL. tests/it/reports.rs computes the expected figures from
-- the same rules; change both together. Incident i:
--   runbook   connection-issues when i % 10 = 0, else user-cant-call
--   esc       2 when i % 12 = 0 (L1 -> L2 -> L3), 1 when i % 4 = 0 (L1 -> L2), else 0
--   closed    unless i % 5 = 0 (then waiting_user when i % 3 = 0, escalated when esc, else open)
--   times     l1 = 60000 (1 + i % 17) + i % 1000, l2 = 120000 (1 + i % 13) when esc >= 1,
--             l3 = 300000 (1 + i % 7) when esc = 2, waiting = 30000 (i % 23) when i % 6 = 0
--   steps     3 + i % 3 of gate.a, l1.b, l1.c, l1.d, l1.e; step j by (i + j) % 4: 0 assumed,
--             1 agent, else automated; actor agent((i + j) % 9); when i % 11 = 0 an extra
--             agent answer to l1.b by agent0 (same answer when i % 22 = 0, else "x")
--   agents    the actors of its steps between commas (agent0 twice when the extra answer's
--             agent0 had a step already: the column is a set, read by membership);
--             answers_automated, answers_agent, answers_assumed count its step records by source
INSERT INTO incidents (id, account, reporter, description, level, status, runbook, current_step,
    outcome, escalation_kind, assignee, version, created_at, updated_at, closed_at, phase_at,
    l1_ms, l2_ms, l3_ms, waiting_ms, agents, answers_automated, answers_agent, answers_assumed)
WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < {N}),
g AS (
    SELECT i,
        CASE WHEN i % 12 = 0 THEN 2 WHEN i % 4 = 0 THEN 1 ELSE 0 END AS esc,
        CASE WHEN i % 5 <> 0 THEN 1 ELSE 0 END AS closed,
        {BASE} + i * 60000 AS created,
        60000 * (1 + i % 17) + i % 1000 AS l1,
        CASE WHEN i % 4 = 0 THEN 120000 * (1 + i % 13) ELSE 0 END AS l2,
        CASE WHEN i % 12 = 0 THEN 300000 * (1 + i % 7) ELSE 0 END AS l3,
        CASE WHEN i % 6 = 0 THEN 30000 * (i % 23) ELSE 0 END AS w,
        -- step j < 3 + i % 3 has source (i + j) % 4: 0 assumed, 1 agent, else automated
        CASE WHEN i % 4 = 0 THEN 1 ELSE 0 END + CASE WHEN (i + 1) % 4 = 0 THEN 1 ELSE 0 END
            + CASE WHEN (i + 2) % 4 = 0 THEN 1 ELSE 0 END
            + CASE WHEN i % 3 >= 1 AND (i + 3) % 4 = 0 THEN 1 ELSE 0 END
            + CASE WHEN i % 3 = 2 AND (i + 4) % 4 = 0 THEN 1 ELSE 0 END AS assumed,
        CASE WHEN i % 4 = 1 THEN 1 ELSE 0 END + CASE WHEN (i + 1) % 4 = 1 THEN 1 ELSE 0 END
            + CASE WHEN (i + 2) % 4 = 1 THEN 1 ELSE 0 END
            + CASE WHEN i % 3 >= 1 AND (i + 3) % 4 = 1 THEN 1 ELSE 0 END
            + CASE WHEN i % 3 = 2 AND (i + 4) % 4 = 1 THEN 1 ELSE 0 END
            + CASE WHEN i % 11 = 0 THEN 1 ELSE 0 END AS agent
    FROM n)
SELECT i, 'acct' || CAST(i AS TEXT), 'reporter', 'generated',
    CASE esc WHEN 2 THEN 'L3' WHEN 1 THEN 'L2' ELSE 'L1' END,
    CASE WHEN closed = 1 THEN 'closed' WHEN i % 3 = 0 THEN 'waiting_user'
         WHEN esc > 0 THEN 'escalated' ELSE 'open' END,
    CASE WHEN i % 10 = 0 THEN 'connection-issues' ELSE 'user-cant-call' END,
    NULL,
    CASE WHEN closed = 0 THEN NULL WHEN (i / 3) % 4 = 0 THEN 'not_an_issue'
         WHEN (i / 3) % 4 = 1 THEN 'trunk_problem' WHEN (i / 3) % 4 = 2 THEN 'client_config'
         ELSE 'license' END,
    CASE WHEN esc = 2 THEN 'l3_check' WHEN esc = 1 AND i % 8 = 0 THEN 'network_check'
         WHEN esc = 1 THEN 'user_configuration_check' END,
    'agent' || CAST(i % 7 AS TEXT), 1, created,
    CASE WHEN closed = 1 THEN created + l1 + l2 + l3 + w ELSE created END,
    CASE WHEN closed = 1 THEN created + l1 + l2 + l3 + w END,
    CASE WHEN closed = 1 THEN created + l1 + l2 + l3 + w ELSE created END,
    l1, l2, l3, w,
    ',agent' || CAST(i % 9 AS TEXT) || ',agent' || CAST((i + 1) % 9 AS TEXT)
        || ',agent' || CAST((i + 2) % 9 AS TEXT) || ','
        || CASE WHEN i % 3 >= 1 THEN 'agent' || CAST((i + 3) % 9 AS TEXT) || ',' ELSE '' END
        || CASE WHEN i % 3 = 2 THEN 'agent' || CAST((i + 4) % 9 AS TEXT) || ',' ELSE '' END
        || CASE WHEN i % 11 = 0 THEN 'agent0,' ELSE '' END,
    3 + i % 3 - assumed - (agent - CASE WHEN i % 11 = 0 THEN 1 ELSE 0 END), agent, assumed
FROM g;
INSERT INTO step_records (id, incident_id, runbook, step, answer, source, evidence, note, actor,
    at, replaces, overrides)
WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < {N}),
js AS (SELECT 0 AS j, 'gate.a' AS step UNION ALL SELECT 1, 'l1.b' UNION ALL SELECT 2, 'l1.c'
       UNION ALL SELECT 3, 'l1.d' UNION ALL SELECT 4, 'l1.e')
SELECT i * 8 + j, i, 'user-cant-call', step, 'a' || CAST((i + j) % 2 AS TEXT),
    CASE (i + j) % 4 WHEN 0 THEN 'assumed' WHEN 1 THEN 'agent' ELSE 'automated' END,
    'null', NULL, 'agent' || CAST((i + j) % 9 AS TEXT), {BASE} + i * 60000 + j * 1000, NULL, NULL
FROM n, js WHERE j < 3 + i % 3;
INSERT INTO step_records (id, incident_id, runbook, step, answer, source, evidence, note, actor,
    at, replaces, overrides)
WITH RECURSIVE n(i) AS (SELECT CAST(11 AS BIGINT) UNION ALL SELECT i + 11 FROM n WHERE i + 11 <= {N})
SELECT i * 8 + 6, i, 'user-cant-call', 'l1.b',
    CASE WHEN i % 22 = 0 THEN 'a' || CAST((i + 1) % 2 AS TEXT) ELSE 'x' END,
    'agent', 'null', NULL, 'agent0', {BASE} + i * 60000 + 10000, i * 8 + 1,
    CASE WHEN i % 22 <> 0 AND (i + 1) % 4 >= 2 THEN i * 8 + 1 END
FROM n;
INSERT INTO escalations (id, incident_id, from_level, to_level, kind, reason, actor, at, after_step)
WITH RECURSIVE n(i) AS (SELECT CAST(4 AS BIGINT) UNION ALL SELECT i + 4 FROM n WHERE i + 4 <= {N})
SELECT i * 2, i, 'L1', 'L2',
    CASE WHEN i % 12 = 0 THEN 'user_configuration_check' WHEN i % 8 = 0 THEN 'network_check'
         ELSE 'user_configuration_check' END,
    'generated', 'agent1', {BASE} + i * 60000 + 5000,
    CASE WHEN i % 8 = 0 THEN 'l1.c' ELSE 'l1.b' END
FROM n;
INSERT INTO escalations (id, incident_id, from_level, to_level, kind, reason, actor, at, after_step)
WITH RECURSIVE n(i) AS (SELECT CAST(12 AS BIGINT) UNION ALL SELECT i + 12 FROM n WHERE i + 12 <= {N})
SELECT i * 2 + 1, i, 'L2', 'L3', 'l3_check', 'generated', 'agent2', {BASE} + i * 60000 + 6000,
    'gate.a'
FROM n;
