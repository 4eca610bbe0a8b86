/* examples/kv/db.c — see db.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

#define KV_DICT_MIN_BUCKETS 8u
#define KV_ENTRY_HEADER_BYTES offsetof(kv_entry, key)

/* FNV-1a, then a final mix so the low bits (the bucket index) depend on
 * every byte. Fixed, unseeded: iteration order must not vary by run. */
uint64_t kv_hash(const uint8_t *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

int kv_dict_init(kv_dict *d)
{
    d->buckets = calloc(KV_DICT_MIN_BUCKETS, sizeof *d->buckets);
    if (!d->buckets)
        return -ENOMEM;
    d->mask = KV_DICT_MIN_BUCKETS - 1;
    d->count = 0;
    return 0;
}

void kv_dict_clear(kv_dict *d, void (*free_value)(kv_entry *e))
{
    if (!d->buckets)
        return;
    for (size_t i = 0; i <= d->mask; i++) {
        kv_entry *e = d->buckets[i];
        while (e) {
            kv_entry *next = e->next;
            if (free_value)
                free_value(e);
            free(e);
            e = next;
        }
        d->buckets[i] = NULL;
    }
    d->count = 0;
}

kv_entry *kv_dict_find(const kv_dict *d, const uint8_t *key, size_t len)
{
    uint32_t h = (uint32_t)kv_hash(key, len);
    for (kv_entry *e = d->buckets[h & d->mask]; e; e = e->next)
        if (e->hash == h && e->klen == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

/* Double the table when it holds more entries than buckets. All at once:
 * Redis rehashes incrementally; here a resize of a million keys costs a
 * few milliseconds, once per doubling. */
static void grow(kv_dict *d)
{
    size_t n = (d->mask + 1) * 2;
    kv_entry **nb = calloc(n, sizeof *nb);
    if (!nb)
        return; /* stay at this size; chains just get longer */
    for (size_t i = 0; i <= d->mask; i++) {
        kv_entry *e = d->buckets[i];
        while (e) {
            kv_entry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = nb[j];
            nb[j] = e;
            e = next;
        }
    }
    free(d->buckets);
    d->buckets = nb;
    d->mask = n - 1;
}

/* Link a filled-in entry (hash, klen, key set) into the table. */
static void dict_link(kv_dict *d, kv_entry *e)
{
    if (d->count >= d->mask + 1)
        grow(d);
    size_t b = e->hash & d->mask;
    e->next = d->buckets[b];
    d->buckets[b] = e;
    d->count++;
}

/* A zeroed entry for key with `extra` bytes of room after it. */
static kv_entry *entry_new(const uint8_t *key, size_t len, size_t extra)
{
    if (len > UINT32_MAX)
        return NULL;
    kv_entry *e = malloc(KV_ENTRY_HEADER_BYTES + len + extra);
    if (!e)
        return NULL;
    memset(e, 0, KV_ENTRY_HEADER_BYTES);
    e->hash = (uint32_t)kv_hash(key, len);
    e->klen = (uint32_t)len;
    memcpy(e->key, key, len);
    return e;
}

kv_entry *kv_dict_add(kv_dict *d, const uint8_t *key, size_t len)
{
    kv_entry *e = entry_new(key, len, 0);
    if (e)
        dict_link(d, e);
    return e;
}

void kv_dict_unlink(kv_dict *d, kv_entry *e)
{
    kv_entry **pp = &d->buckets[e->hash & d->mask];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = e->next;
        d->count--;
    }
}

kv_entry *kv_dict_some(const kv_dict *d, uint64_t start)
{
    if (d->count == 0)
        return NULL;
    for (size_t i = 0; i <= d->mask; i++) {
        kv_entry *e = d->buckets[(start + i) & d->mask];
        if (e)
            return e;
    }
    return NULL;
}

/* ------------------------------------------------------------- values */

kv_str *kv_str_new(const void *p, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    kv_str *s = malloc(sizeof *s + len);
    if (!s)
        return NULL;
    s->len = s->cap = (uint32_t)len;
    if (len)
        memcpy(s->data, p, len);
    return s;
}

kv_str *kv_str_append(kv_str *s, const void *p, size_t len)
{
    if (len > UINT32_MAX - s->len)
        return NULL;
    if (s->cap - s->len < len) {
        size_t ncap = (size_t)s->len + len;
        ncap += ncap / 2; /* APPEND in a loop stays amortised O(1) */
        if (ncap > UINT32_MAX)
            ncap = UINT32_MAX;
        kv_str *ns = realloc(s, sizeof *ns + ncap);
        if (!ns)
            return NULL;
        s = ns;
        s->cap = (uint32_t)ncap;
    }
    memcpy(s->data + s->len, p, len);
    s->len += (uint32_t)len;
    return s;
}

int kv_list_push(kv_list *l, kv_str *s, bool left)
{
    if (l->len == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        kv_str **ni = malloc(ncap * sizeof *ni);
        if (!ni)
            return -ENOMEM;
        for (size_t i = 0; i < l->len; i++)
            ni[i] = l->items[(l->head + i) & (l->cap - 1)];
        free(l->items);
        l->items = ni;
        l->head = 0;
        l->cap = ncap;
    }
    if (left) {
        l->head = (l->head - 1) & (l->cap - 1);
        l->items[l->head] = s;
    } else {
        l->items[(l->head + l->len) & (l->cap - 1)] = s;
    }
    l->len++;
    return 0;
}

kv_str *kv_list_pop(kv_list *l, bool left)
{
    if (l->len == 0)
        return NULL;
    kv_str *s;
    if (left) {
        s = l->items[l->head];
        l->head = (l->head + 1) & (l->cap - 1);
    } else {
        s = l->items[(l->head + l->len - 1) & (l->cap - 1)];
    }
    l->len--;
    return s;
}

kv_str *kv_list_at(const kv_list *l, size_t i) { return l->items[(l->head + i) & (l->cap - 1)]; }

static void free_field(kv_entry *e) { free(e->v.str); }

static void free_value(kv_entry *e)
{
    switch (e->type) {
    case KV_STRING:
        if (!(e->flags & KV_ENTRY_EMBSTR))
            free(e->v.str);
        break;
    case KV_LIST:
        if (e->v.list) {
            while (e->v.list->len)
                free(kv_list_pop(e->v.list, true));
            free(e->v.list->items);
            free(e->v.list);
        }
        break;
    case KV_SET:
    case KV_HASH:
        if (e->v.dict) {
            kv_dict_clear(e->v.dict, e->type == KV_HASH ? free_field : NULL);
            free(e->v.dict->buckets);
            free(e->v.dict);
        }
        break;
    }
    e->v.str = NULL;
}

/* --------------------------------------------------------- expiry heap */

static void heap_set(kv_db *db, size_t i, kv_expiry x)
{
    db->heap[i] = x;
    x.e->heap_pos = (uint32_t)(i + 1);
}

static void heap_up(kv_db *db, size_t i)
{
    kv_expiry x = db->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (db->heap[parent].when_ns <= x.when_ns)
            break;
        heap_set(db, i, db->heap[parent]);
        i = parent;
    }
    heap_set(db, i, x);
}

static void heap_down(kv_db *db, size_t i)
{
    kv_expiry x = db->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        uint64_t best = x.when_ns;
        if (l < db->heap_len && db->heap[l].when_ns < best) {
            m = l;
            best = db->heap[l].when_ns;
        }
        if (l + 1 < db->heap_len && db->heap[l + 1].when_ns < best)
            m = l + 1;
        if (m == i)
            break;
        heap_set(db, i, db->heap[m]);
        i = m;
    }
    heap_set(db, i, x);
}

static void heap_remove(kv_db *db, kv_entry *e)
{
    size_t i = e->heap_pos - 1;
    e->heap_pos = 0;
    db->heap_len--;
    if (i == db->heap_len)
        return;
    heap_set(db, i, db->heap[db->heap_len]);
    heap_down(db, i);
    heap_up(db, db->heap[i].e->heap_pos - 1);
}

uint64_t kv_db_expire_of(const kv_db *db, const kv_entry *e)
{
    return e->heap_pos ? db->heap[e->heap_pos - 1].when_ns : 0;
}

int kv_db_set_expire(kv_db *db, kv_entry *e, uint64_t expire_ns)
{
    if (expire_ns == 0) {
        if (e->heap_pos)
            heap_remove(db, e);
        return 0;
    }
    if (e->heap_pos) {
        db->heap[e->heap_pos - 1].when_ns = expire_ns;
        heap_down(db, e->heap_pos - 1);
        heap_up(db, e->heap_pos - 1);
        return 0;
    }
    if (db->heap_len == db->heap_cap) {
        size_t ncap = db->heap_cap ? db->heap_cap * 2 : 64;
        kv_expiry *nh = realloc(db->heap, ncap * sizeof *nh);
        if (!nh)
            return -ENOMEM;
        db->heap = nh;
        db->heap_cap = ncap;
    }
    db->heap[db->heap_len++] = (kv_expiry){expire_ns, e};
    heap_up(db, db->heap_len - 1);
    return 0;
}

/* ----------------------------------------------------------------- db */

int kv_db_init(kv_db *db)
{
    memset(db, 0, sizeof *db);
    return kv_dict_init(&db->keys);
}

void kv_db_flush(kv_db *db)
{
    kv_dict_clear(&db->keys, free_value);
    db->heap_len = 0;
}

void kv_db_free(kv_db *db)
{
    kv_db_flush(db);
    free(db->keys.buckets);
    free(db->heap);
    memset(db, 0, sizeof *db);
}

void kv_db_delete(kv_db *db, kv_entry *e)
{
    if (e->heap_pos)
        heap_remove(db, e);
    kv_dict_unlink(&db->keys, e);
    free_value(e);
    free(e);
}

static void expire_one(kv_db *db, kv_entry *e)
{
    db->expired_keys++;
    if (db->on_expire)
        db->on_expire(db->on_expire_arg, e->key, e->klen);
    kv_db_delete(db, e);
}

kv_entry *kv_db_lookup(kv_db *db, const uint8_t *key, size_t len, uint64_t now_ns, bool expire)
{
    kv_entry *e = kv_dict_find(&db->keys, key, len);
    if (!e || !e->heap_pos || db->heap[e->heap_pos - 1].when_ns > now_ns)
        return e;
    if (expire)
        expire_one(db, e);
    return NULL;
}

kv_entry *kv_db_lookup_for_write(kv_db *db, const uint8_t *key, size_t len, uint64_t now_ns, bool expire,
                                 bool *live)
{
    kv_entry *e = kv_dict_find(&db->keys, key, len);
    *live = e != NULL;
    if (!e || !e->heap_pos || db->heap[e->heap_pos - 1].when_ns > now_ns)
        return e;
    *live = false;
    if (!expire)
        return e;
    expire_one(db, e);
    return NULL;
}

kv_entry *kv_db_add(kv_db *db, const uint8_t *key, size_t len, int type)
{
    kv_entry *e = kv_dict_add(&db->keys, key, len);
    if (!e)
        return NULL;
    e->type = (uint8_t)type;
    return e;
}

/* Where an embedded value's kv_str starts: after the key, aligned for
 * its uint32_t fields. */
static size_t embstr_offset(size_t klen)
{
    size_t off = KV_ENTRY_HEADER_BYTES + klen;
    return (off + _Alignof(kv_str) - 1) & ~(_Alignof(kv_str) - 1);
}

kv_entry *kv_db_add_string(kv_db *db, const uint8_t *key, size_t len, const void *v, size_t vlen)
{
    if (vlen > KV_EMBSTR_MAX_BYTES) {
        kv_str *s = kv_str_new(v, vlen);
        kv_entry *e = s ? kv_db_add(db, key, len, KV_STRING) : NULL;
        if (!e) {
            free(s);
            return NULL;
        }
        e->v.str = s;
        return e;
    }
    size_t off = embstr_offset(len);
    kv_entry *e = entry_new(key, len, off - KV_ENTRY_HEADER_BYTES - len + sizeof(kv_str) + vlen);
    if (!e)
        return NULL;
    e->type = KV_STRING;
    e->flags = KV_ENTRY_EMBSTR;
    kv_str *s = (kv_str *)((uint8_t *)e + off);
    /* The allocator's rounding is room too: a later SET or INCR of a
     * value that fits rewrites it in place. */
    size_t room = malloc_usable_size(e) - off - sizeof(kv_str);
    s->len = (uint32_t)vlen;
    s->cap = (uint32_t)(room > KV_EMBSTR_MAX_BYTES ? KV_EMBSTR_MAX_BYTES : room);
    if (vlen)
        memcpy(s->data, v, vlen);
    e->v.str = s;
    dict_link(&db->keys, e);
    return e;
}

int kv_entry_set_str(kv_entry *e, const void *v, size_t vlen)
{
    if ((e->flags & KV_ENTRY_EMBSTR) && vlen <= e->v.str->cap) {
        memmove(e->v.str->data, v, vlen);
        e->v.str->len = (uint32_t)vlen;
        return 0;
    }
    kv_str *s = kv_str_new(v, vlen);
    if (!s)
        return -ENOMEM;
    if (!(e->flags & KV_ENTRY_EMBSTR))
        free(e->v.str);
    e->flags &= (uint8_t)~KV_ENTRY_EMBSTR; /* the embedded room stays unused */
    e->v.str = s;
    return 0;
}

int kv_entry_append_str(kv_entry *e, const void *p, size_t len)
{
    kv_str *s;
    if (!e->v.str) {
        s = kv_str_new(p, len);
    } else if (e->flags & KV_ENTRY_EMBSTR) {
        kv_str *own = kv_str_new(e->v.str->data, e->v.str->len);
        s = own ? kv_str_append(own, p, len) : NULL;
        if (!s)
            free(own);
    } else {
        s = kv_str_append(e->v.str, p, len);
    }
    if (!s)
        return -ENOMEM;
    e->flags &= (uint8_t)~KV_ENTRY_EMBSTR;
    e->v.str = s;
    return 0;
}

size_t kv_db_expire_cycle(kv_db *db, uint64_t now_ns, size_t budget)
{
    size_t n = 0;
    while (n < budget && db->heap_len && db->heap[0].when_ns <= now_ns) {
        expire_one(db, db->heap[0].e);
        n++;
    }
    return n;
}

uint64_t kv_db_next_expire(const kv_db *db) { return db->heap_len ? db->heap[0].when_ns : 0; }
