/* rest_client.c: JSON requests to the REST API over libcurl's easy interface. */
#include "cli/rest_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/table.h"
#include "common/buf.h"
#include "common/errors.h"

/* A controller's answer larger than this is refused (a page of 1000 events is well
 * under a megabyte). */
#define REST_CLIENT__MAX_BODY (64u * 1024u * 1024u)

/* Stop paging after this many pages even if `count` says more (a server ignoring
 * `page` would otherwise be paged forever). */
#define REST_CLIENT__MAX_PAGES 100000

struct rest_client {
    CURL *curl;
    char *base_url; /* without trailing '/' */
    char *authorization; /* "Authorization: Bearer T" or NULL */
    char *basic_user;    /* HTTP Basic, or NULL */
    char *basic_password;
    long last_status;
    char *cacert;
    int insecure;
    long timeout_s;
    char curl_error[CURL_ERROR_SIZE];
    char error[1024];
};

/* The body being received. */
struct rest_client__buffer {
    struct buf body; /* NUL-terminated (buf_append_text) */
    int too_big;
};

static void rest_client__set_error(struct rest_client *client, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rest_client__set_error(struct rest_client *client, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(client->error, sizeof client->error, fmt, ap);
    va_end(ap);
}

static char *rest_client__strdup(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

struct rest_client *rest_client_create(const struct rest_client_options *options)
{
    struct rest_client *client = calloc(1, sizeof *client);
    size_t len;

    if (client == NULL)
        return NULL;
    client->curl = curl_easy_init();
    client->base_url = rest_client__strdup(options->controller_url);
    client->cacert = rest_client__strdup(options->cacert);
    if (options->basic_user != NULL && options->basic_password != NULL) {
        client->basic_user = strdup(options->basic_user);
        client->basic_password = strdup(options->basic_password);
        if (client->basic_user == NULL || client->basic_password == NULL) {
            rest_client_free(client);
            return NULL;
        }
    }
    if (options->token != NULL) {
        size_t n = strlen(options->token) + sizeof "Authorization: Bearer ";
        client->authorization = malloc(n);
        if (client->authorization != NULL)
            snprintf(client->authorization, n, "Authorization: Bearer %s", options->token);
    }
    if (client->curl == NULL || client->base_url == NULL ||
        (options->cacert != NULL && client->cacert == NULL) ||
        (options->token != NULL && client->authorization == NULL)) {
        rest_client_free(client);
        return NULL;
    }
    len = strlen(client->base_url);
    while (len > 0 && client->base_url[len - 1] == '/')
        client->base_url[--len] = '\0';
    client->insecure = options->insecure;
    client->timeout_s = options->timeout_s > 0 ? options->timeout_s : 10;
    return client;
}

void rest_client_free(struct rest_client *client)
{
    if (client == NULL)
        return;
    if (client->curl != NULL)
        curl_easy_cleanup(client->curl);
    free(client->base_url);
    free(client->authorization);
    free(client->cacert);
    free(client->basic_user);
    if (client->basic_password != NULL) {
        volatile char *p = client->basic_password;
        while (*p)
            *p++ = '\0';
        free(client->basic_password);
    }
    free(client);
}

const char *rest_client_error(const struct rest_client *client)
{
    return client->error;
}

long rest_client_last_status(const struct rest_client *client)
{
    return client->last_status;
}

void rest_response_clear(struct rest_response *response)
{
    free(response->body);
    if (response->json != NULL)
        json_decref(response->json);
    memset(response, 0, sizeof *response);
}

char *rest_client_escape(struct rest_client *client, const char *text)
{
    char *escaped = curl_easy_escape(client->curl, text, 0);
    char *copy;
    if (escaped == NULL)
        return NULL;
    copy = strdup(escaped); /* so that the caller frees it with free() */
    curl_free(escaped);
    return copy;
}

static size_t rest_client__on_data(char *data, size_t size, size_t count, void *user)
{
    struct rest_client__buffer *buffer = user;
    size_t n = size * count;

    if (n > REST_CLIENT__MAX_BODY - buffer->body.len) {
        buffer->too_big = 1;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    if (buf_append_text(&buffer->body, data, n) != 0)
        return 0;
    return n;
}

/* Turns a libcurl failure into the client's message and a VIGIL_E* code. */
static int rest_client__transfer_failed(struct rest_client *client, CURLcode code,
                                        const char *method, const char *path,
                                        const struct rest_client__buffer *buffer)
{
    long os_errno = 0;
    curl_off_t connect_us = 0;
    const char *detail = client->curl_error[0] ? client->curl_error : curl_easy_strerror(code);

    curl_easy_getinfo(client->curl, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(client->curl, CURLINFO_CONNECT_TIME_T, &connect_us);

    switch (code) {
    case CURLE_COULDNT_CONNECT:
        rest_client__set_error(client, "cannot reach %s: %s", client->base_url,
                               os_errno != 0 ? strerror((int)os_errno) : detail);
        return VIGIL_EIO;
    case CURLE_COULDNT_RESOLVE_HOST:
        rest_client__set_error(client, "cannot reach %s: unknown host (%s)", client->base_url,
                               detail);
        return VIGIL_EIO;
    case CURLE_OPERATION_TIMEDOUT:
        if (connect_us > 0)
            rest_client__set_error(client, "%s %s: no complete answer from %s within %ld s",
                                   method, path, client->base_url, client->timeout_s);
        else
            rest_client__set_error(client, "cannot reach %s: no connection within %ld s",
                                   client->base_url, client->timeout_s);
        return VIGIL_ETIMEDOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        rest_client__set_error(client,
                               "cannot reach %s: TLS: %s (a self-signed controller needs "
                               "--cacert FILE, or --insecure)", client->base_url, detail);
        return VIGIL_EIO;
    case CURLE_SSL_CONNECT_ERROR:
        rest_client__set_error(client, "cannot reach %s: TLS: %s", client->base_url, detail);
        return VIGIL_EIO;
    case CURLE_WRITE_ERROR:
        if (buffer->too_big) {
            rest_client__set_error(client, "%s %s: the answer is larger than %u bytes", method,
                                   path, REST_CLIENT__MAX_BODY);
            return VIGIL_ETOOBIG;
        }
        rest_client__set_error(client, "%s %s: out of memory", method, path);
        return VIGIL_ENOMEM;
    case CURLE_GOT_NOTHING:
        rest_client__set_error(client, "%s %s: %s closed the connection without an answer",
                               method, path, client->base_url);
        return VIGIL_EIO;
    default:
        rest_client__set_error(client, "%s %s on %s: %s", method, path, client->base_url,
                               detail);
        return VIGIL_EIO;
    }
}

int rest_client_request(struct rest_client *client, const char *method, const char *path,
                        const char *body, struct rest_response *response)
{
    struct rest_client__buffer buffer = {0};
    struct curl_slist *headers = NULL, *more;
    const char *header_lines[4];
    size_t nheaders = 0, i;
    char *url;
    size_t url_len;
    CURLcode code;
    int rv = 0;

    rest_response_clear(response);
    client->error[0] = '\0';
    client->curl_error[0] = '\0';
    client->last_status = 0;

    url_len = strlen(client->base_url) + strlen(path) + 1;
    url = malloc(url_len);
    if (url == NULL) {
        rest_client__set_error(client, "out of memory");
        return VIGIL_ENOMEM;
    }
    snprintf(url, url_len, "%s%s", client->base_url, path);

    header_lines[nheaders++] = "Accept: application/json";
    header_lines[nheaders++] = "Expect:"; /* no 100-continue round trip */
    if (body != NULL)
        header_lines[nheaders++] = "Content-Type: application/json";
    if (client->authorization != NULL && client->basic_user == NULL)
        header_lines[nheaders++] = client->authorization;
    for (i = 0; i < nheaders; i++) {
        more = curl_slist_append(headers, header_lines[i]);
        if (more == NULL) {
            curl_slist_free_all(headers);
            free(url);
            rest_client__set_error(client, "out of memory");
            return VIGIL_ENOMEM;
        }
        headers = more;
    }

    /* The handle is reused (its connection too); every option is set again here. */
    curl_easy_reset(client->curl);
    curl_easy_setopt(client->curl, CURLOPT_URL, url);
    curl_easy_setopt(client->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(client->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(client->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(client->curl, CURLOPT_TIMEOUT, client->timeout_s);
    curl_easy_setopt(client->curl, CURLOPT_CONNECTTIMEOUT, client->timeout_s);
    curl_easy_setopt(client->curl, CURLOPT_ERRORBUFFER, client->curl_error);
    curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(client->curl, CURLOPT_USERAGENT, "vigil-cli");
    curl_easy_setopt(client->curl, CURLOPT_WRITEFUNCTION, rest_client__on_data);
    curl_easy_setopt(client->curl, CURLOPT_WRITEDATA, &buffer);
    if (client->cacert != NULL)
        curl_easy_setopt(client->curl, CURLOPT_CAINFO, client->cacert);
    if (client->basic_user != NULL) {
        curl_easy_setopt(client->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(client->curl, CURLOPT_USERNAME, client->basic_user);
        curl_easy_setopt(client->curl, CURLOPT_PASSWORD, client->basic_password);
    }
    if (client->insecure) {
        curl_easy_setopt(client->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(client->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(client->curl, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(client->curl, CURLOPT_POST, 1L);
    } else {
        curl_easy_setopt(client->curl, CURLOPT_CUSTOMREQUEST, method);
    }
    if (body != NULL) {
        curl_easy_setopt(client->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(client->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(client->curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(client->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }

    code = curl_easy_perform(client->curl);
    if (code != CURLE_OK) {
        rv = rest_client__transfer_failed(client, code, method, path, &buffer);
        buf_free(&buffer.body);
        goto done;
    }

    curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &response->status);
    client->last_status = response->status;
    if (buffer.body.data == NULL) {
        buffer.body.data = calloc(1, 1);
        if (buffer.body.data == NULL) {
            rest_client__set_error(client, "out of memory");
            rv = VIGIL_ENOMEM;
            goto done;
        }
    }
    response->body = buffer.body.data;
    response->body_len = buffer.body.len;
    if (buffer.body.len > 0)
        response->json = json_loadb(buffer.body.data, buffer.body.len, JSON_DECODE_ANY, NULL);

    if (response->status >= 300 && response->status < 400) {
        char *target = NULL;
        char where[512];
        curl_easy_getinfo(client->curl, CURLINFO_REDIRECT_URL, &target);
        table_sanitize(where, sizeof where, target != NULL ? target : "(no Location)");
        rest_client__set_error(client,
                               "%s %s: the controller redirected (HTTP %ld) to %s; not "
                               "followed (point --controller at the right URL)",
                               method, path, response->status, where);
        rest_response_clear(response);
        rv = VIGIL_EINVAL;
    }

done:
    curl_slist_free_all(headers);
    free(url);
    return rv;
}

int rest_client_call(struct rest_client *client, const char *method, const char *path,
                     const char *body, int need_json, struct rest_response *response)
{
    int rv = rest_client_request(client, method, path, body, response);
    if (rv != 0)
        return rv;

    if (response->status < 200 || response->status > 299) {
        json_t *error = json_is_object(response->json)
                            ? json_object_get(response->json, "error") : NULL;
        json_t *outcome = json_is_object(response->json)
                              ? json_object_get(response->json, "outcome") : NULL;
        char text[600], outcome_text[80] = "";
        if (json_is_string(error)) {
            table_sanitize(text, sizeof text, json_string_value(error));
        } else {
            char snippet[200];
            table_sanitize(snippet, sizeof snippet, response->body);
            snprintf(text, sizeof text, "(no JSON error text)%s%s", snippet[0] ? " " : "",
                     snippet);
        }
        if (json_is_string(outcome)) {
            char word[40];
            table_sanitize(word, sizeof word, json_string_value(outcome));
            snprintf(outcome_text, sizeof outcome_text, " (outcome: %s)", word);
        }
        rest_client__set_error(client, "%s %s: HTTP %ld: %s%s", method, path, response->status,
                               text, outcome_text);
        rest_response_clear(response);
        return VIGIL_EIO;
    }
    if (need_json && response->json == NULL) {
        rest_client__set_error(client, "%s %s: HTTP %ld but the answer is not JSON", method,
                               path, response->status);
        rest_response_clear(response);
        return VIGIL_EIO;
    }
    return 0;
}

int rest_client_get_all(struct rest_client *client, const char *path, const char *query,
                        int page_size, json_t **results, json_int_t *count)
{
    struct rest_response response = {0};
    json_t *all = json_array();
    json_int_t page, total = 0;
    char *page_path;
    size_t cap;
    int rv = 0;

    *results = NULL;
    *count = 0;
    cap = strlen(path) + (query ? strlen(query) : 0) + 64;
    page_path = malloc(cap);
    if (all == NULL || page_path == NULL) {
        json_decref(all);
        free(page_path);
        rest_client__set_error(client, "out of memory");
        return VIGIL_ENOMEM;
    }

    for (page = 1; page <= REST_CLIENT__MAX_PAGES; page++) {
        json_t *page_results, *page_count;
        int page_empty;
        snprintf(page_path, cap, "%s?%s%spage=%lld&page_size=%d", path, query ? query : "",
                 query && query[0] ? "&" : "", (long long)page, page_size);
        rv = rest_client_call(client, "GET", page_path, NULL, 1, &response);
        if (rv != 0)
            break;
        page_results = json_object_get(response.json, "results");
        page_count = json_object_get(response.json, "count");
        if (!json_is_array(page_results) || !json_is_integer(page_count)) {
            rest_client__set_error(client, "GET %s: the answer has no \"count\" and "
                                   "\"results\" list", page_path);
            rv = VIGIL_EIO;
            break;
        }
        total = json_integer_value(page_count);
        if (json_array_extend(all, page_results) != 0) {
            rest_client__set_error(client, "out of memory");
            rv = VIGIL_ENOMEM;
            break;
        }
        page_empty = json_array_size(page_results) == 0;
        rest_response_clear(&response); /* page_results goes with it */
        if (page_empty || (json_int_t)json_array_size(all) >= total)
            break;
    }
    rest_response_clear(&response);
    free(page_path);
    if (rv != 0) {
        json_decref(all);
        return rv;
    }
    *results = all;
    *count = total;
    return 0;
}
