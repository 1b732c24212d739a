/* The write side of a registry, as a client: publish and yank requests
 * (docs/formats/registry.md#write-side-plan-registry-serve). */
#include "curl_api.h"

#include <stdlib.h>
#include <string.h>

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    plan_buf *b = user;
    size_t n = size * nmemb;
    if (b->len + n > (1u << 20))
        return 0; /* an answer is a short JSON object */
    plan_buf_add(b, data, n);
    return n;
}

/* POST to <registry>/<path> with the token; the status and the server's
 * message ("error" of its JSON answer) come back. */
static int post(plan_ctx *ctx, const plan_registry *reg, const char *token, const char *path,
                curl_mime *mime, const char *json_body, CURL *curl, plan_registry_answer *out)
{
    char *url = plan_xasprintf("%s/%s", reg->url, path);
    char *auth = plan_xasprintf("Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    if (json_body)
        h = curl_slist_append(h, "Content-Type: application/json");
    plan_buf body;
    plan_buf_init(&body);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    if (mime)
        curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
    else
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "plan/" PLAN_VERSION);
    CURLcode cc = curl_easy_perform(curl);
    int rc = 0;
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        rc = plan_fail(ctx, PLAN_ERR_FAILED, "cannot reach '%s': %s", url,
                       errbuf[0] ? errbuf : curl_easy_strerror(cc));
    } else {
        out->status = status;
        json_t *j = json_loadb(body.data, body.len, 0, NULL);
        const char *e = json_string_value(json_object_get(j, "error"));
        out->message = e ? plan_xstrdup(e) : NULL;
        out->body = plan_buf_detach(&body);
        json_decref(j);
    }
    curl_slist_free_all(h);
    plan_buf_release(&body);
    free(auth);
    free(url);
    return rc;
}

void plan_registry_answer_release(plan_registry_answer *a)
{
    free(a->message);
    free(a->body);
    memset(a, 0, sizeof(*a));
}

int plan_registry_publish(plan_ctx *ctx, const plan_registry *reg, const char *token,
                          const char *package, const char *signature, const char *archive,
                          const char *recipe, plan_registry_answer *out)
{
    memset(out, 0, sizeof(*out));
    if (!strncmp(reg->url, "file://", 7))
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "registry '%s' is a file:// mirror: publish to the registry itself "
                         "(plan-registry serve), then export the mirror again", reg->name);
    int rc = curl_api_ready(ctx);
    if (rc)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    curl_mime *mime = curl_mime_init(curl);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "package");
    curl_mime_data(part, package, CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "signature");
    curl_mime_data(part, signature, CURL_ZERO_TERMINATED);
    if (recipe) {
        part = curl_mime_addpart(mime);
        curl_mime_name(part, "recipe");
        curl_mime_filedata(part, recipe);
    }
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "archive");
    curl_mime_filedata(part, archive);
    rc = post(ctx, reg, token, "api/v1/publish", mime, NULL, curl, out);
    curl_mime_free(mime);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    return rc;
}

int plan_registry_yank(plan_ctx *ctx, const plan_registry *reg, const char *token,
                       const char *name, const char *version, plan_registry_answer *out)
{
    memset(out, 0, sizeof(*out));
    int rc = curl_api_ready(ctx);
    if (rc)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    json_t *j = json_pack("{s:s, s:s}", "name", name, "version", version);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    rc = post(ctx, reg, token, "api/v1/yank", NULL, text, curl, out);
    free(text);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    return rc;
}
