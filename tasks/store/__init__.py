"""The store: every SQL statement of the platform lives in this package (but the merge rule's query,
tasks/merge.py), one module per table; callers use `from tasks import store` and the names below.

Tables (layout: `schema.py`, numbered migrations)
- files, waiting, ignored (`ledger.py`): the ledger, one row per (client, name) ever taken (the
  name rule reads it, so rows are never deleted: retention sets purged_at and keeps name, hash
  and statistics); files seen but still being written; re-uploads under a used name.
- contacts_<client> (`contacts.py`): one table per client, the merged contacts.
- row_errors (`row_errors.py`): every rejected row value (line, field, message) of an imported file.
- runs (`runs.py`): one row per import run (daily, backfill) with its state and totals.
- deletions (`retention.py`): retention's intent and log.
- erasures (`erasure.py`): people erased from a client's data (who, when, how much; never the address).
- results, samples (`results.py`): the client folder's result documents due and samples written.

Two backends, chosen by `SFTP_IMPORT_STORE_URL` (`store_at`), run the same SQL (`sql.py` spells
what differs). The embedded default, one DuckDB file, admits one read-write process: every
read-write connection holds the store's writer lock (`tasks.writer_lock`, a kernel file lock freed
when its holder dies); readers (`status`) retry briefly while a writer holds the file
(`connection.py`). PostgreSQL (`postgres.py`) has no global lock: what must not run twice at once
for one client holds that client's advisory lock (`write(client=…)`).
"""

from tasks.store.connection import WAIT_FOR_WRITER_SECONDS, DuckDBStore, Store, close_store, open_store, store_at
from tasks.store.contacts import (
    ContactsLayoutError,
    contact_columns,
    contacts_table,
    ensure_contacts_table,
    read_contacts,
    upsert_contacts,
)
from tasks.store.erasure import (
    compact_duckdb,
    erasable_files,
    erase_contact,
    erase_row_errors,
    erasure_log,
    record_erasure,
    record_rewritten,
    reject_erased,
    vacuum_erased,
)
from tasks.store.ledger import (
    IMPORT_STATS,
    ClientLedger,
    FileResult,
    FileStatus,
    KnownFile,
    client_files,
    file_status,
    file_status_and_hash,
    forget_waiting,
    known_files,
    ledger_entries,
    name_key,
    record_arrivals,
    record_file_result,
    record_ignored,
    record_waiting,
    staged_files,
    sync_ledgers,
)
from tasks.store.overview import overview_figures
from tasks.store.results import (
    RESULT_COLUMNS,
    ResultKey,
    clients_with_pending_results,
    forget_results,
    ignored_uploads,
    mark_results,
    pending_results,
    record_results_written,
    record_samples,
    result_files,
    row_errors_of,
    samples_digests,
)
from tasks.store.retention import deletion_log, files_to_purge, pending_deletions, plan_deletions, record_purge
from tasks.store.row_errors import client_errors, file_errors, record_row_errors
from tasks.store.runs import Run, close_crashed_runs, record_failed_runs, record_run, start_run
from tasks.store.schema import LATEST, schema_version
from tasks.store.sql import transaction

__all__ = [
    "IMPORT_STATS",
    "LATEST",
    "RESULT_COLUMNS",
    "WAIT_FOR_WRITER_SECONDS",
    "ClientLedger",
    "ContactsLayoutError",
    "DuckDBStore",
    "FileResult",
    "FileStatus",
    "KnownFile",
    "ResultKey",
    "Run",
    "Store",
    "client_errors",
    "client_files",
    "clients_with_pending_results",
    "close_crashed_runs",
    "close_store",
    "compact_duckdb",
    "contact_columns",
    "contacts_table",
    "deletion_log",
    "ensure_contacts_table",
    "erasable_files",
    "erase_contact",
    "erase_row_errors",
    "erasure_log",
    "file_errors",
    "file_status",
    "file_status_and_hash",
    "files_to_purge",
    "forget_results",
    "forget_waiting",
    "ignored_uploads",
    "known_files",
    "ledger_entries",
    "mark_results",
    "name_key",
    "open_store",
    "overview_figures",
    "pending_deletions",
    "pending_results",
    "plan_deletions",
    "read_contacts",
    "record_arrivals",
    "record_erasure",
    "record_failed_runs",
    "record_file_result",
    "record_ignored",
    "record_purge",
    "record_results_written",
    "record_rewritten",
    "record_row_errors",
    "record_run",
    "record_samples",
    "record_waiting",
    "reject_erased",
    "result_files",
    "row_errors_of",
    "samples_digests",
    "schema_version",
    "staged_files",
    "start_run",
    "store_at",
    "sync_ledgers",
    "transaction",
    "upsert_contacts",
    "vacuum_erased",
]
