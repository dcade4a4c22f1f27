/* ccache.c: the process-wide credentials cache (see ccache.h): a small
 * array of copied strings behind a mutex, so Lua states in several
 * threads of one process share it safely. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "ccache.h"

#define CCACHE_SIZE 64

typedef struct slot {
    char *key;
    vp_centry e;
    unsigned long used; /* for replacing the least recently used */
} slot;

static slot slots[CCACHE_SIZE];
static unsigned long clock_tick;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void vp_centry_clear(vp_centry *e)
{
    free_secret(e->token);
    free(e->ak);
    free_secret(e->sk);
    free_secret(e->security_token);
    free(e->project_id);
    free(e->expires_text);
    memset(e, 0, sizeof *e);
}

static int dup_field(char **out, const char *s)
{
    *out = NULL;
    if (s == NULL)
        return 0;
    *out = strdup(s);
    return *out == NULL ? -1 : 0;
}

static int copy_entry(vp_centry *out, const vp_centry *in)
{
    memset(out, 0, sizeof *out);
    out->expires_at = in->expires_at;
    if (dup_field(&out->token, in->token) || dup_field(&out->ak, in->ak) || dup_field(&out->sk, in->sk) ||
        dup_field(&out->security_token, in->security_token) || dup_field(&out->project_id, in->project_id) ||
        dup_field(&out->expires_text, in->expires_text)) {
        vp_centry_clear(out);
        return -1;
    }
    return 0;
}

static slot *find(const char *key)
{
    int i;
    for (i = 0; i < CCACHE_SIZE; i++)
        if (slots[i].key != NULL && strcmp(slots[i].key, key) == 0)
            return &slots[i];
    return NULL;
}

static void slot_clear(slot *s)
{
    free(s->key);
    s->key = NULL;
    vp_centry_clear(&s->e);
    s->used = 0;
}

int vp_ccache_get(const char *key, vp_centry *out)
{
    slot *s;
    int ok = 0;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&lock);
    s = find(key);
    if (s != NULL && copy_entry(out, &s->e) == 0) {
        s->used = ++clock_tick;
        ok = 1;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

int vp_ccache_put(const char *key, const vp_centry *e)
{
    slot *s, *lru = &slots[0];
    vp_centry copy;
    char *k;
    int i;
    if (copy_entry(&copy, e) != 0)
        return -1;
    if ((k = strdup(key)) == NULL) {
        vp_centry_clear(&copy);
        return -1;
    }
    pthread_mutex_lock(&lock);
    s = find(key);
    if (s == NULL) {
        for (i = 0; i < CCACHE_SIZE; i++)
            if (slots[i].used < lru->used)
                lru = &slots[i];
        s = lru;
    }
    slot_clear(s);
    s->key = k;
    s->e = copy;
    s->used = ++clock_tick;
    pthread_mutex_unlock(&lock);
    return 0;
}

void vp_ccache_drop(const char *key)
{
    slot *s;
    pthread_mutex_lock(&lock);
    s = find(key);
    if (s != NULL)
        slot_clear(s);
    pthread_mutex_unlock(&lock);
}

void vp_ccache_clear(void)
{
    int i;
    pthread_mutex_lock(&lock);
    for (i = 0; i < CCACHE_SIZE; i++)
        slot_clear(&slots[i]);
    pthread_mutex_unlock(&lock);
}
