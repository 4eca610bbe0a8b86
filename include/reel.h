/* reel.h — umbrella header: an asyncio-style event loop for C that runs on
 * epoll, on a simulated virtual-time network, or replays a recorded run.
 * See README.md and docs/ for a guide; each header documents its calls. */
#ifndef REEL_H
#define REEL_H

#include "reel/error.h"
#include "reel/backend.h"
#include "reel/loop.h"
#include "reel/future.h"
#include "reel/replay.h"
#include "reel/sim.h"
#include "reel/task.h"
#include "reel/transport.h"
#include "reel/server.h"
#include "reel/net.h"
#include "reel/stream.h"
#include "reel/executor.h"
#include "reel/signal.h"
#include "reel/subprocess.h"

#endif
