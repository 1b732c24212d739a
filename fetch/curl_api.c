/* Loading libcurl on first use (see curl_api.h for why). */
#include "curl_api.h"

#include <dlfcn.h>
#include <pthread.h>

/* Written once, under pthread_once, and read-only afterwards: the one
 * process-wide table fetch/ keeps, as the library it describes is
 * process-wide too. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static curl_fns fns;
static const char *load_error;

/* POSIX's way to turn dlsym's object pointer into a function pointer. */
#define LOAD(field, name)                                                                    \
    do {                                                                                     \
        void *sym = dlsym(h, name);                                                          \
        if (!sym) {                                                                          \
            load_error = "a symbol is missing: " name;                                      \
            return;                                                                          \
        }                                                                                    \
        *(void **)(&fns.field) = sym;                                                        \
    } while (0)

static void load(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        load_error = dlerror();
        return;
    }
    LOAD(global_init, "curl_global_init");
    LOAD(global_cleanup, "curl_global_cleanup");
    LOAD(easy_init, "curl_easy_init");
    LOAD(easy_cleanup, "curl_easy_cleanup");
    LOAD(easy_reset, "curl_easy_reset");
    LOAD(easy_setopt, "curl_easy_setopt");
    LOAD(easy_getinfo, "curl_easy_getinfo");
    LOAD(easy_perform, "curl_easy_perform");
    LOAD(easy_strerror, "curl_easy_strerror");
    LOAD(multi_init, "curl_multi_init");
    LOAD(multi_cleanup, "curl_multi_cleanup");
    LOAD(multi_setopt, "curl_multi_setopt");
    LOAD(multi_add_handle, "curl_multi_add_handle");
    LOAD(multi_remove_handle, "curl_multi_remove_handle");
    LOAD(multi_perform, "curl_multi_perform");
    LOAD(multi_poll, "curl_multi_poll");
    LOAD(multi_info_read, "curl_multi_info_read");
    LOAD(mime_init, "curl_mime_init");
    LOAD(mime_free, "curl_mime_free");
    LOAD(mime_addpart, "curl_mime_addpart");
    LOAD(mime_name, "curl_mime_name");
    LOAD(mime_data, "curl_mime_data");
    LOAD(mime_filedata, "curl_mime_filedata");
    LOAD(slist_append, "curl_slist_append");
    LOAD(slist_free_all, "curl_slist_free_all");
    /* Initialised here too, once for the process (libcurl counts its
     * initialisations: this one is never undone), so the TLS setup it
     * makes (a millisecond and more) happens on the loading thread too,
     * and the transfers' own curl_global_init only count. */
    if (fns.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        load_error = "curl_global_init failed";
}

int curl_api_ready(plan_ctx *ctx)
{
    pthread_once(&once, load);
    if (load_error)
        return plan_fail(ctx, PLAN_ERR_FAILED,
                         "cannot load libcurl (libcurl.so.4: %s): install the libcurl4 package",
                         load_error);
    return 0;
}

const curl_fns *curl_api(void)
{
    return &fns;
}

void plan_fetch_preload(void)
{
    pthread_once(&once, load);
}
