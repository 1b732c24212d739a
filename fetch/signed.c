/* Signed JSON documents (docs/formats/registry.md#signed-documents):
 * {"signed": {...}, "signatures": [{"keyid", "sig"}]}, the signature over
 * the canonical text of "signed" with its "type" as the purpose. */
#include "fetch.h"

#include <stdlib.h>
#include <string.h>

/* Real numbers have no canonical text here: refuse them. */
static bool has_real(json_t *j)
{
    if (json_is_real(j))
        return true;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
            if (has_real(v))
                return true;
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
            if (has_real(v))
                return true;
    }
    return false;
}

char *plan_canonical_json(json_t *j)
{
    if (!j || has_real(j))
        return NULL;
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
}

char *plan_signed_wrap(const plan_seckey *k, json_t *signed_obj)
{
    const char *type = json_string_value(json_object_get(signed_obj, "type"));
    char *text = type ? plan_canonical_json(signed_obj) : NULL;
    if (!text) {
        json_decref(signed_obj);
        return NULL;
    }
    char *sig = plan_sign(k, type, text, strlen(text));
    json_t *doc = json_pack("{s:o, s:[{s:s, s:s}]}", "signed", signed_obj, "signatures", "keyid",
                            k->id, "sig", sig);
    free(sig);
    free(text);
    char *out = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(doc);
    return out;
}

int plan_signed_open(plan_ctx *ctx, const char *text, size_t len, const plan_pubkey *key,
                     const char *type, const char *what, json_t **signed_out)
{
    json_error_t err;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    json_t *sg = doc ? json_object_get(doc, "signed") : NULL;
    json_t *sigs = doc ? json_object_get(doc, "signatures") : NULL;
    const char *t = sg ? json_string_value(json_object_get(sg, "type")) : NULL;
    int rc = 0;
    if (!doc)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s is not JSON (line %d: %s)", what, err.line,
                       err.text);
    else if (!json_is_object(sg) || !json_is_array(sigs))
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s is not a signed document", what);
    else if (!t || strcmp(t, type) != 0)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s is a '%s' document where a '%s' was expected",
                       what, t ? t : "?", type);
    char *canon = rc ? NULL : plan_canonical_json(sg);
    if (!rc && !canon)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s holds a real number; signed documents hold "
                                              "integers only", what);
    /* The signature of the pinned key, wherever it is in the list. */
    bool found = false;
    size_t i;
    json_t *s;
    if (!rc)
        json_array_foreach(sigs, i, s) {
            const char *id = json_string_value(json_object_get(s, "keyid"));
            if (!id || strcmp(id, key->id) != 0)
                continue;
            found = true;
            rc = plan_verify(ctx, key, type, canon, strlen(canon),
                             json_string_value(json_object_get(s, "sig")), what);
            break;
        }
    if (!rc && !found)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                       "%s is not signed by the pinned key '%s' (id %s): the registry's key "
                       "changed, or this is not the registry you added",
                       what, key->name, key->id);
    free(canon);
    if (!rc) {
        *signed_out = json_incref(sg);
    }
    json_decref(doc);
    return rc;
}
