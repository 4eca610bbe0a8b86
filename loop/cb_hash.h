/* loop/cb_hash.h — the callback hash's step (reel_callback_hash_step) in
 * its two halves, so a caller that sees the same name again (the recorder,
 * once per callback site) can hash the name once and fold it in each time:
 * step(h, func) == fold(h, name(func)). Not installed. */
#ifndef REEL_LOOP_CB_HASH_H
#define REEL_LOOP_CB_HASH_H

#include <stdint.h>

/* FNV-1a over the name ("?" for none). */
static inline uint64_t rl_callback_name_hash(const char *func)
{
    uint64_t s = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)(func ? func : "?"); *p; p++)
        s = (s ^ *p) * 0x100000001b3ull;
    return s;
}

/* Fold a name's hash into the running value, so the order of names
 * matters. */
static inline uint64_t rl_callback_hash_fold(uint64_t h, uint64_t name_hash)
{
    h = (h ^ name_hash) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

#endif
