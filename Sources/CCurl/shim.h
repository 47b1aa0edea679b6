#ifndef SPOTQ_CCURL_SHIM_H
#define SPOTQ_CCURL_SHIM_H
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call.
// These typed shims are the only way CurlClient sets options or reads info.
static inline CURLcode spotq_curl_setopt_long(CURL *h, CURLoption o, long v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode spotq_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode spotq_curl_setopt_string(CURL *h, CURLoption o, const char *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode spotq_curl_setopt_pointer(CURL *h, CURLoption o, void *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode spotq_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) {
    return curl_easy_setopt(h, o, v);
}

typedef size_t (*spotq_curl_data_callback)(char *data, size_t size, size_t count, void *context);
typedef int (*spotq_curl_progress_callback)(void *context, curl_off_t dltotal, curl_off_t dlnow,
                                            curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode spotq_curl_setopt_data_callback(CURL *h, CURLoption o, spotq_curl_data_callback cb) {
    return curl_easy_setopt(h, o, cb);
}
static inline CURLcode spotq_curl_setopt_progress_callback(CURL *h, spotq_curl_progress_callback cb) {
    return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cb);
}

static inline CURLcode spotq_curl_getinfo_long(CURL *h, CURLINFO i, long *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode spotq_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) {
    return curl_easy_getinfo(h, i, v);
}

// Added for CurlClient: global init, request bodies that can be rewound on redirect, and
// string info (the effective URL after redirects).
static inline CURLcode spotq_curl_global_init_default(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT);
}
typedef int (*spotq_curl_seek_callback)(void *context, curl_off_t offset, int origin);
static inline CURLcode spotq_curl_setopt_seek_callback(CURL *h, spotq_curl_seek_callback cb) {
    return curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, cb);
}
static inline CURLcode spotq_curl_getinfo_string(CURL *h, CURLINFO i, const char **v) {
    return curl_easy_getinfo(h, i, v);
}
#endif
