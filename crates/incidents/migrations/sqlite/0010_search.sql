-- Search (src/search.rs): FTS5 over each incident's account, reporter and description, and
-- over the agents' step notes; both external-content tables kept by triggers.
CREATE VIRTUAL TABLE incidents_fts USING fts5(
    account, reporter, description, content='incidents', content_rowid='id');
CREATE VIRTUAL TABLE notes_fts USING fts5(note, content='step_records', content_rowid='id');
INSERT INTO incidents_fts (incidents_fts) VALUES ('rebuild');
INSERT INTO notes_fts (notes_fts) VALUES ('rebuild');
CREATE TRIGGER incidents_fts_insert AFTER INSERT ON incidents BEGIN
    INSERT INTO incidents_fts (rowid, account, reporter, description)
    VALUES (new.id, new.account, new.reporter, new.description);
END;
CREATE TRIGGER incidents_fts_update AFTER UPDATE OF account, reporter, description ON incidents BEGIN
    INSERT INTO incidents_fts (incidents_fts, rowid, account, reporter, description)
    VALUES ('delete', old.id, old.account, old.reporter, old.description);
    INSERT INTO incidents_fts (rowid, account, reporter, description)
    VALUES (new.id, new.account, new.reporter, new.description);
END;
CREATE TRIGGER notes_fts_insert AFTER INSERT ON step_records WHEN new.note IS NOT NULL BEGIN
    INSERT INTO notes_fts (rowid, note) VALUES (new.id, new.note);
END;
-- The internal notes agents add to an incident (the notes table, migration 7).
CREATE VIRTUAL TABLE incident_notes_fts USING fts5(text, content='notes', content_rowid='id');
INSERT INTO incident_notes_fts (incident_notes_fts) VALUES ('rebuild');
CREATE TRIGGER incident_notes_fts_insert AFTER INSERT ON notes BEGIN
    INSERT INTO incident_notes_fts (rowid, text) VALUES (new.id, new.text);
END;
