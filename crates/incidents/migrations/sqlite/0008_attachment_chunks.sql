-- Attachments streamed in (`dialtone incident attach`) are stored as numbered chunks, so a
-- writer never holds more than one chunk in memory; their `content` is empty.
CREATE TABLE attachment_chunks (
    attachment_id  INTEGER NOT NULL REFERENCES attachments (id),
    seq            INTEGER NOT NULL,
    data           BLOB    NOT NULL,
    PRIMARY KEY (attachment_id, seq)
);
