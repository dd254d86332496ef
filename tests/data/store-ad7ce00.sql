-- The rows of a store as the version at ad7ce00 wrote it (its layout is store.schema.BASELINE, that
-- version's DDL verbatim: tests/test_migrations.py pins it): a few rows of each table and northwind's
-- contacts table. tests/test_migrations.py builds the old store from both and upgrades it.
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
