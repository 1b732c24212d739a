/* curl_api.h - private to fetch/: libcurl, loaded when first needed.
 *
 * libcurl brings some forty shared libraries with it (TLS, LDAP, Kerberos,
 * IDN, ...), and mapping them costs about 5 ms at every start of plan,
 * which is most of an instant 'plan env'.  Most commands never transfer a
 * byte, so fetch/ loads libcurl with dlopen on first use instead.  Every
 * public entry point of fetch/ that transfers calls curl_api_ready()
 * first; after that the curl_* names below are safe to call. */
#ifndef PLAN_FETCH_CURL_API_H
#define PLAN_FETCH_CURL_API_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "fetch.h"

typedef struct curl_fns {
    CURLcode (*global_init)(long);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_perform)(CURLM *, int *);
    CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd[], unsigned int, int, int *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    curl_mime *(*mime_init)(CURL *);
    void (*mime_free)(curl_mime *);
    curl_mimepart *(*mime_addpart)(curl_mime *);
    CURLcode (*mime_name)(curl_mimepart *, const char *);
    CURLcode (*mime_data)(curl_mimepart *, const char *, size_t);
    CURLcode (*mime_filedata)(curl_mimepart *, const char *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} curl_fns;

/* 0, or PLAN_ERR_FAILED with a message when libcurl cannot be loaded. */
int curl_api_ready(plan_ctx *ctx);
/* The table; only after curl_api_ready succeeded. */
const curl_fns *curl_api(void);

/* curl.h defines these three as function-like macros; ours replace them. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (curl_api()->global_init)
#define curl_global_cleanup (curl_api()->global_cleanup)
#define curl_easy_init (curl_api()->easy_init)
#define curl_easy_cleanup (curl_api()->easy_cleanup)
#define curl_easy_reset (curl_api()->easy_reset)
#define curl_easy_setopt (curl_api()->easy_setopt)
#define curl_easy_getinfo (curl_api()->easy_getinfo)
#define curl_easy_perform (curl_api()->easy_perform)
#define curl_easy_strerror (curl_api()->easy_strerror)
#define curl_multi_init (curl_api()->multi_init)
#define curl_multi_cleanup (curl_api()->multi_cleanup)
#define curl_multi_setopt (curl_api()->multi_setopt)
#define curl_multi_add_handle (curl_api()->multi_add_handle)
#define curl_multi_remove_handle (curl_api()->multi_remove_handle)
#define curl_multi_perform (curl_api()->multi_perform)
#define curl_multi_poll (curl_api()->multi_poll)
#define curl_multi_info_read (curl_api()->multi_info_read)
#define curl_mime_init (curl_api()->mime_init)
#define curl_mime_free (curl_api()->mime_free)
#define curl_mime_addpart (curl_api()->mime_addpart)
#define curl_mime_name (curl_api()->mime_name)
#define curl_mime_data (curl_api()->mime_data)
#define curl_mime_filedata (curl_api()->mime_filedata)
#define curl_slist_append (curl_api()->slist_append)
#define curl_slist_free_all (curl_api()->slist_free_all)

#endif
