/* examples/kv/db.h — the keyspace: one hash table of keys, values of four
 * types (string, list, set, hash), and expiry on the loop clock.
 *
 * The same chained hash table (kv_dict) holds the keyspace, the members of
 * a set and the fields of a hash. Its iteration order depends only on the
 * sequence of operations (a fixed hash function, no random seed), so a
 * simulated or replayed run sees the same order every time.
 *
 * Expiry: keys with a deadline sit in a min-heap by deadline. Reads check
 * the deadline (lazy expiry); kv_db_expire_cycle deletes what is due
 * (active expiry), a bounded number of keys per call.
 */
#ifndef KV_DB_H
#define KV_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { KV_STRING = 1, KV_LIST, KV_SET, KV_HASH };

/* A string value; `cap` bytes are allocated after the header. */
typedef struct kv_str {
    uint32_t len, cap;
    uint8_t data[];
} kv_str;

/* A list: a ring of string pointers (O(1) push/pop at both ends, O(1)
 * index for LRANGE). cap is a power of two. */
typedef struct kv_list {
    kv_str **items;
    size_t head, len, cap;
} kv_list;

typedef struct kv_dict kv_dict;

/* One key (or set member, or hash field). 30 bytes before the key: a
 * million small keys are a million of these, so the rare parts live
 * elsewhere (a deadline sits in the expiry heap, found through heap_pos)
 * and a short string value lives in the same allocation, after the key
 * (KV_ENTRY_EMBSTR, as Redis's embstr): one malloc per small key. */
typedef struct kv_entry {
    struct kv_entry *next;  /* bucket chain */
    union {
        kv_str *str;        /* KV_STRING value; a hash field's value */
        kv_list *list;
        kv_dict *dict;      /* KV_SET (members, no values) or KV_HASH */
    } v;
    uint32_t hash;          /* kv_hash, low 32 bits (bucket index, compare) */
    uint32_t heap_pos;      /* keyspace: index + 1 in the expiry heap; 0 none */
    uint32_t klen;
    uint8_t type;
    uint8_t flags;          /* KV_ENTRY_* */
    uint8_t key[];
} kv_entry;

/* v.str points into the entry itself (kv_db_add_string): never freed or
 * grown on its own; kv_entry_set_str / kv_entry_append_str handle it. */
#define KV_ENTRY_EMBSTR 0x01u
/* Longest value embedded in its key's entry (Redis's embstr limit). */
#define KV_EMBSTR_MAX_BYTES 44u

struct kv_dict {
    kv_entry **buckets;
    size_t mask;            /* buckets - 1 (power of two) */
    size_t count;
};

uint64_t kv_hash(const uint8_t *p, size_t len);

int kv_dict_init(kv_dict *d);
/* Free every entry; free_value(e) first frees what e->v owns (may be NULL). */
void kv_dict_clear(kv_dict *d, void (*free_value)(kv_entry *e));
kv_entry *kv_dict_find(const kv_dict *d, const uint8_t *key, size_t len);
/* Insert a new entry for a key that is not in the table. NULL: no memory. */
kv_entry *kv_dict_add(kv_dict *d, const uint8_t *key, size_t len);
/* Unlink e (the caller frees it and its value). */
void kv_dict_unlink(kv_dict *d, kv_entry *e);
/* The first entry at or after bucket `start` (wrapping), or NULL if empty. */
kv_entry *kv_dict_some(const kv_dict *d, uint64_t start);

kv_str *kv_str_new(const void *p, size_t len);
/* Append; may move the string (returns the new pointer, NULL: no memory,
 * the old one is untouched then). */
kv_str *kv_str_append(kv_str *s, const void *p, size_t len);

int kv_list_push(kv_list *l, kv_str *s, bool left);
kv_str *kv_list_pop(kv_list *l, bool left);
kv_str *kv_list_at(const kv_list *l, size_t i);

/* An expiry heap slot: the deadline (on the loop clock) and its key. */
typedef struct kv_expiry {
    uint64_t when_ns;
    kv_entry *e;
} kv_expiry;

typedef struct kv_db {
    kv_dict keys;
    kv_expiry *heap;        /* expiry min-heap by when_ns */
    size_t heap_len, heap_cap;
    uint64_t expired_keys;  /* INFO stats */
    /* Called for each key deleted because it expired, before it is freed
     * (the server propagates a DEL to replicas). */
    void (*on_expire)(void *arg, const uint8_t *key, size_t len);
    void *on_expire_arg;
} kv_db;

int kv_db_init(kv_db *db);
void kv_db_free(kv_db *db);
void kv_db_flush(kv_db *db);
/* The live entry for key, or NULL. A key past its deadline is deleted
 * (when `expire` is true: a primary) or just treated as missing (a
 * replica, which waits for its primary's DEL). */
kv_entry *kv_db_lookup(kv_db *db, const uint8_t *key, size_t len, uint64_t now_ns, bool expire);
/* kv_db_lookup for a command about to overwrite the key: one hash and one
 * bucket walk for both the read and the write. Returns the entry still in
 * the table (on a replica that can be a key past its deadline), or NULL;
 * *live says whether the key counts as present. */
kv_entry *kv_db_lookup_for_write(kv_db *db, const uint8_t *key, size_t len, uint64_t now_ns, bool expire,
                                 bool *live);
/* Add a key of `type` with an empty value (the caller fills e->v). The
 * key must not exist (look it up first). NULL: no memory. */
kv_entry *kv_db_add(kv_db *db, const uint8_t *key, size_t len, int type);
/* Add a KV_STRING key holding a copy of v; a value of up to
 * KV_EMBSTR_MAX_BYTES is embedded in the entry (one allocation). The key
 * must not exist. NULL: no memory. */
kv_entry *kv_db_add_string(kv_db *db, const uint8_t *key, size_t len, const void *v, size_t vlen);
/* Replace a string entry's value with a copy of v: in place when it fits
 * the embedded room, else in a new kv_str. 0, or -ENOMEM (value unchanged). */
int kv_entry_set_str(kv_entry *e, const void *v, size_t vlen);
/* Append to a string entry's value (v.str may be NULL: starts one). An
 * embedded value moves out to a kv_str. 0, or -ENOMEM (unchanged). */
int kv_entry_append_str(kv_entry *e, const void *p, size_t len);
void kv_db_delete(kv_db *db, kv_entry *e);
/* The key's deadline on the loop clock, or 0 when it has none. */
uint64_t kv_db_expire_of(const kv_db *db, const kv_entry *e);
/* Set (ns > 0) or clear (0) a key's deadline. Returns 0 or -ENOMEM. */
int kv_db_set_expire(kv_db *db, kv_entry *e, uint64_t expire_ns);
/* Delete up to `budget` keys whose deadline is <= now. Returns how many. */
size_t kv_db_expire_cycle(kv_db *db, uint64_t now_ns, size_t budget);
/* The earliest deadline, or 0 when no key has one. */
uint64_t kv_db_next_expire(const kv_db *db);

#endif
