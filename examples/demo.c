/* demo — placeholder until the demo program lands (same commit series). */
#include <stdio.h>
#include "reel.h"
int main(void) { reel_loop *l; if (reel_loop_new(&l)) return 1; reel_loop_free(l); puts("ok"); return 0; }
