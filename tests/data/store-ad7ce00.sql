-- A store as the version at ad7ce00 wrote it (no schema_version, no files.code): its DDL, verbatim,
-- then a few rows of each table and northwind's contacts table. tests/test_migrations.py upgrades it.
CREATE TABLE IF NOT EXISTS files (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    status VARCHAR NOT NULL,            -- staged | imported | rejected
    reason VARCHAR,                     -- why rejected (whole file)
    size BIGINT,
    mtime TIMESTAMPTZ,
    sha256 VARCHAR,
    received_at TIMESTAMPTZ NOT NULL,   -- when the sync saw it complete
    staged_path VARCHAR,
    same_content_as VARCHAR,            -- an earlier file of the client with the same bytes
    format VARCHAR,
    encoding VARCHAR,
    delimiter VARCHAR,
    warnings VARCHAR,
    rows_read INTEGER,
    rows_imported INTEGER,
    rows_rejected INTEGER,
    duplicates_removed INTEGER,
    emails_merged INTEGER,
    new_contacts INTEGER,
    updated_contacts INTEGER,
    imported_at TIMESTAMPTZ,
    run_id VARCHAR,
    read_seconds DOUBLE,
    upsert_seconds DOUBLE,
    purged_at TIMESTAMPTZ,
    PRIMARY KEY (client, name)
);
CREATE TABLE IF NOT EXISTS waiting (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    mtime TIMESTAMPTZ NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL, -- first seen with this size and mtime
    PRIMARY KEY (client, name)
);
CREATE TABLE IF NOT EXISTS ignored (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    mtime TIMESTAMPTZ NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    reason VARCHAR NOT NULL,
    PRIMARY KEY (client, name, size, mtime)
);
CREATE TABLE IF NOT EXISTS row_errors (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    field VARCHAR NOT NULL,
    message VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    client VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,              -- daily | backfill
    cutoff TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    files_imported INTEGER,
    files_rejected INTEGER,
    rows_read INTEGER,
    rows_imported INTEGER,
    rows_rejected INTEGER,
    duplicates_removed INTEGER,
    emails_merged INTEGER,
    new_contacts INTEGER,
    updated_contacts INTEGER
);
CREATE TABLE IF NOT EXISTS deletions (
    client VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    sha256 VARCHAR,
    received_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ NOT NULL,
    location VARCHAR NOT NULL           -- sftp | staging
);
INSERT INTO files (client, name, status, reason, size, mtime, sha256, received_at, staged_path, format, encoding,
                   delimiter, rows_read, rows_imported, rows_rejected, duplicates_removed, emails_merged,
                   new_contacts, updated_contacts, imported_at, run_id)
VALUES ('northwind', 'monday.csv', 'imported', NULL, 120, '2026-11-30 05:00:00+00', 'a1', '2026-11-30 05:01:00+00',
        '/staging/northwind/monday.csv', 'csv', 'utf-8', ',', 3, 2, 1, 0, 0, 2, 0, '2026-12-01 05:00:00+00', 'run-1'),
       ('northwind', 'notes.pdf', 'rejected', 'the extension .pdf is not accepted', 5, '2026-11-30 05:00:00+00', 'b2',
        '2026-11-30 05:01:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO waiting VALUES ('northwind', 'late.csv', 10, '2026-12-01 04:00:00+00', '2026-12-01 04:05:00+00');
INSERT INTO ignored VALUES ('northwind', 'monday.csv', 99, '2026-12-01 04:00:00+00', '2026-12-01 04:05:00+00',
                            'already received on 2026-11-30 05:01 UTC: upload it again under a new name');
INSERT INTO row_errors VALUES ('northwind', 'monday.csv', 4, 'Segment', '''Gold'' is not an allowed value');
INSERT INTO runs VALUES ('run-1', 'northwind', 'daily', '2026-12-01 05:00:00+00', '2026-12-01 05:00:00+00',
                         '2026-12-01 05:00:02+00', 1, 0, 3, 2, 1, 0, 0, 2, 0);
INSERT INTO deletions VALUES ('northwind', 'old.csv', 'c3', '2026-10-01 05:00:00+00', '2026-11-30 03:30:00+00', 'sftp');
CREATE TABLE "contacts_northwind" (email_key VARCHAR NOT NULL, "email" VARCHAR, "first_name" VARCHAR,
    "last_name" VARCHAR, "account_id" VARCHAR, "purchase_date" DATE, "amount" DECIMAL(38,10), "segment" VARCHAR,
    first_file VARCHAR, last_file VARCHAR, updated_at TIMESTAMPTZ);
INSERT INTO "contacts_northwind" VALUES ('ann@x.com', 'Ann@x.com', 'Ann', NULL, '007', '2026-02-01', 12.5, 'SMB',
                                         'monday.csv', 'monday.csv', '2026-12-01 05:00:01+00');
