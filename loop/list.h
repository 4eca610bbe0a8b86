/* loop/list.h — intrusive doubly linked list: the node lives inside the
 * object, so linking never allocates. Used by networking (transports,
 * servers, operations), processes, signals and executors. Not installed. */
#ifndef REEL_LIST_H
#define REEL_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rl_list {
    struct rl_list *prev, *next;
} rl_list;

static inline void rl_list_init(rl_list *l) { l->prev = l->next = l; }
static inline bool rl_list_empty(const rl_list *l) { return l->next == l; }
static inline void rl_list_push(rl_list *head, rl_list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}
static inline void rl_list_del(rl_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}
#define rl_container(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
