/* fuzz/kit/kit.h — inside the fuzz kit, not installed.
 *
 * The fuzz connection's leak check by identity (alloc.c): while a window
 * is open, every block the thread allocates is remembered by address
 * until it is freed (a free of memory from before the window changes
 * nothing, unlike reel_fuzz_leak_check_end's count). So the blocks a run
 * left behind are known exactly, even when the run also freed older
 * memory — which a world kept across inputs does. */
#ifndef REEL_FUZZ_KIT_H
#define REEL_FUZZ_KIT_H

#include <stdbool.h>

/* Open a window: forget earlier blocks, remember new ones. */
void fz_track_begin(void);
/* Stop remembering new blocks (frees still count); returns whether it
 * was on, for fz_track_resume to restore. */
bool fz_track_pause(void);
void fz_track_resume(bool was);
/* Blocks made in the window and not freed yet; -1 if the kit ran out of
 * memory for its set (no answer). */
long fz_track_live(void);
/* Close the window: fz_track_live(), then forget. */
long fz_track_end(void);

/* conn.c: worlds this thread has made for fuzz connections (a kept
 * world makes none): tests check that inputs reuse one. */
unsigned long fz_conn_worlds_made(void);

#endif
