/* log_store-int.h: the log store's private parts, shared by log_store.c (open, the writer,
 * retention, close) and log_store_read.c (the queries on the loop thread). */
#ifndef VIGIL_LOGS_LOG_STORE_INT_H
#define VIGIL_LOGS_LOG_STORE_INT_H

#include <sqlite3.h>

#include "controller/logs/log_store.h"

/* One record as it is stored (parsed on the loop thread, written by the writer). */
struct log_store_row {
    int64_t seq, ts_ms, status, bytes_in, bytes_out;
    double total_ms;  /* < 0: null */
    char *vs_uuid;    /* or NULL */
    char *client_ip;
    char *text;       /* the record's compact JSON */
};

/* Where a metrics record's status classes go in log_store_metric_row.status_classes. */
enum log_store_status_class {
    LOG_STORE_1XX, LOG_STORE_2XX, LOG_STORE_3XX, LOG_STORE_4XX, LOG_STORE_5XX, LOG_STORE_OTHER,
    LOG_STORE__CLASSES
};
/* Their names on the wire, in the API and (status_<name>) as the metrics table's columns. */
extern const char *const log_store_status_class_names[LOG_STORE__CLASSES];

/* One per-second metrics record as it is stored. */
struct log_store_metric_row {
    int64_t seq, ts_ms, requests, bytes_in, bytes_out;
    int64_t status_classes[LOG_STORE__CLASSES];
    char *vs_uuid;           /* or NULL */
    char *latency_histogram; /* compact JSON {"BUCKET": count}, checked */
};

enum log_store_batch_kind { LOG_STORE_RECORDS, LOG_STORE_METRICS };

struct log_store_batch {
    struct log_store_batch *next;
    enum log_store_batch_kind kind;
    char *se_uuid, *se_name;
    struct log_store_row *rows;               /* LOG_STORE_RECORDS */
    struct log_store_metric_row *metric_rows; /* LOG_STORE_METRICS */
    size_t n, cap;
    log_store_done_cb cb;  /* NULL: cancelled */
    void *data;
    struct log_store_outcome outcome;
};

struct log_store {
    uv_loop_t *loop;
    sqlite3 *writer;   /* used by the worker while a commit runs, else by nobody */
    sqlite3 *reader;   /* loop thread only */
    uint64_t retention_bytes;
    int64_t retention_ms;
    int64_t retention_every_ms;
    unsigned commit_delay_ms;
    int64_t retention_last_ms; /* monotonic, the writer's last retention pass */
    struct log_store_batch *pending, **pending_tail; /* submitted, not yet in a commit */
    struct log_store_batch *job;  /* the batches of the commit running, or NULL */
    uv_work_t work;
    uv_check_t check;  /* starts a commit at the end of each loop iteration */
    uv_idle_t wake;    /* active with CHECK: the iteration's poll does not block */
    int closing;
};

#endif
