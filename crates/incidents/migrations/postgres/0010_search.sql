-- Search (src/search.rs): full-text GIN indexes over each incident's account, reporter and
-- description, and over the agents' step notes. Every character but letters and digits is a
-- space first, so words split as SQLite's FTS5 splits them (an address's parts are words).
CREATE INDEX incidents_search ON incidents USING GIN (to_tsvector('simple',
    regexp_replace(account || ' ' || reporter || ' ' || description, '[^[:alnum:]]+', ' ', 'g')));
CREATE INDEX step_records_note_search ON step_records USING GIN (to_tsvector('simple',
    regexp_replace(note, '[^[:alnum:]]+', ' ', 'g'))) WHERE note IS NOT NULL;
-- The internal notes agents add to an incident (the notes table, migration 7).
CREATE INDEX notes_text_search ON notes USING GIN (to_tsvector('simple',
    regexp_replace(text, '[^[:alnum:]]+', ' ', 'g')));
