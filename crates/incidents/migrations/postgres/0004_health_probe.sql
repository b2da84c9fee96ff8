-- One row the health check rewrites to prove the store can still write (after a write failed).
CREATE TABLE health_probe (
    id  INTEGER PRIMARY KEY,
    at  BIGINT  NOT NULL
);
